import { setWarningLogger } from 'node-opcua-debug';

/**
 * Imported before node-opcua by the simulators, for its side effect: node-opcua
 * prints warnings to the console as its modules load (a note on RSA PKCS#1 v1.5,
 * which the Basic256Sha256 policy the simulators offer does not use for
 * encryption) and while it runs. A simulator in a test or in `cosafe demo`
 * has nothing to say there. The gateway's OPC-UA adapter sends the same
 * output to its logger at debug level instead (edge/adapters/opcua.ts).
 */
setWarningLogger(() => {});
