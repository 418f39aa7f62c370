import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { CosafeError } from '../../core/errors.js';
import type { BrokerRole } from '../../core/vocabulary.js';
import { connectHost, normalizeAddress, type ConnectionGate, type ConnectionInfo, type Listener } from './connection-info.js';
import { listen, ownSockets } from './server-lifecycle.js';

export interface TlsListenerOptions {
  host: string;
  port: number;
  roles: readonly BrokerRole[];
  cert: string;
  key: string;
  ca?: string;
  requestClientCert: boolean;
  handshakeTimeoutMs: number;
  gate: ConnectionGate;
}

/**
 * MQTT over TLS. With `requestClientCert`, a client may log in with a
 * certificate signed by `ca` instead of a password: the certificate's subject
 * CN names the identity. A client without a certificate still logs in with a
 * password; one whose certificate does not verify is refused at CONNECT (the
 * handshake is let through so that the refusal is an MQTT answer the client can log).
 */
export async function startTlsListener(o: TlsListenerOptions): Promise<Listener> {
  const admits = new Set(o.roles);
  const files = { cert: readPem(o.cert, 'cert'), key: readPem(o.key, 'key'), ...(o.ca ? { ca: readPem(o.ca, 'ca') } : {}) };
  let server: Server;
  try {
    server = createServer({ ...files, requestCert: o.requestClientCert, rejectUnauthorized: false, handshakeTimeout: o.handshakeTimeoutMs }, (socket) => {
      o.gate.attach(socket, { listener: 'tls', address: normalizeAddress(socket.remoteAddress), admits, ...certificateOf(socket, o.requestClientCert) });
    });
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_TLS_FILES', `the TLS listener cannot use its certificate, key or CA: ${(err as Error).message}`, { cause: err });
  }
  // Refuse an address before spending a handshake on it.
  server.on('connection', (socket) => {
    if (!o.gate.admit(normalizeAddress(socket.remoteAddress), 'tls')) socket.destroy();
  });
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  const owned = ownSockets(server);
  await listen(server, o.port, o.host);
  const port = (server.address() as AddressInfo).port;
  return { name: 'tls', port, url: `mqtts://${connectHost(o.host)}:${port}`, close: () => owned.close() };
}

function certificateOf(socket: TLSSocket, requested: boolean): Pick<ConnectionInfo, 'certificate'> {
  if (!requested) return {};
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return {};
  const cn = peer.subject?.CN;
  const subjectCn = Array.isArray(cn) ? cn[0] : cn;
  return {
    certificate: {
      verified: socket.authorized,
      ...(subjectCn ? { subjectCn } : {}),
      ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
    },
  };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_TLS_FILES', `cannot read broker.listeners.tls.${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}
