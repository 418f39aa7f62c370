import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, run } from './processes.js';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Issues a client certificate with subject CN `cn`, signed by this CA (or by a CA the broker does not trust). */
  client(cn: string, options?: { untrusted?: boolean }): Promise<{ cert: string; key: string }>;
}

/**
 * A CA, a server certificate for 127.0.0.1 and localhost, and client
 * certificates, made with openssl in a temporary directory. EC keys: fast.
 */
export async function makeTestPki(): Promise<TestPki> {
  const openssl = requireBinary('openssl', 'openssl');
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-pki-'));
  const f = (name: string) => join(dir, name);
  const sh = async (args: string[]) => {
    const r = await run(openssl, args, { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  const newCa = async (name: string, cn: string) =>
    sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`)]);
  const issue = async (name: string, cn: string, ca: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    await sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)]);
    await sh(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`)]);
    return { cert: f(`${name}.crt`), key: f(`${name}.key`) };
  };
  await newCa('ca', 'cosafe test CA');
  await newCa('rogue-ca', 'not the hub CA');
  const server = await issue('server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  let n = 0;
  return {
    dir,
    ca: f('ca.crt'),
    serverCert: server.cert,
    serverKey: server.key,
    client: (cn, options = {}) => issue(`client-${n++}`, cn, options.untrusted ? 'rogue-ca' : 'ca', 'extendedKeyUsage=clientAuth\n'),
  };
}
