import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../../../broker/auth/credential-store.js';
import Database from 'better-sqlite3';
import { DECOY_HASH, hashChosenSecret, hashIssuedSecret, newSecret, verifySecret } from '../../../../broker/auth/secret-hash.js';
import { VerifiedSecrets } from '../../../../broker/auth/verified-secrets.js';
import { CosafeError } from '../../../../core/errors.js';

const open: CredentialStore[] = [];
function store(path = join(mkdtempSync(join(tmpdir(), 'cosafe-creds-')), 'credentials.db'), verified?: VerifiedSecrets): CredentialStore {
  const s = CredentialStore.open(path, undefined, verified ? { verified } : {});
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof CosafeError) return err.code;
    throw err;
  }
  return undefined;
}

describe('secret hashing', () => {
  it('keeps an issued secret as its SHA-256, which verifies it and no other', async () => {
    const secret = newSecret();
    const stored = hashIssuedSecret(secret);
    expect(stored).toMatch(/^sha256\$[A-Za-z0-9_-]{43}$/);
    expect(hashIssuedSecret(secret)).toBe(stored);
    expect(await verifySecret(secret, stored)).toBe(true);
    expect(await verifySecret(newSecret(), stored)).toBe(false);
    expect(await verifySecret(`${secret}x`, stored)).toBe(false);
    expect(await verifySecret(secret, DECOY_HASH)).toBe(false);
    for (const broken of ['sha256$', `sha256$${'A'.repeat(42)}`, `${stored}$x`, 'not a hash']) expect(await verifySecret(secret, broken)).toBe(false);
    // A secret a person chose has no 256 bits to stand on: it never gets the fast hash.
    expect(() => hashIssuedSecret('correct horse battery staple')).toThrow(/hashChosenSecret/);
  });

  it('keeps a chosen secret as salted scrypt, and verifies it', async () => {
    const [a, b] = [await hashChosenSecret('s3cret'), await hashChosenSecret('s3cret')];
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(await verifySecret('s3cret', a)).toBe(true);
    expect(await verifySecret('s3cret!', a)).toBe(false);
  });
});

/** A credential as a store of an earlier version kept it: the same row, its secret as scrypt. */
async function asOldStore(path: string, id: string, secret: string): Promise<void> {
  const db = new Database(path);
  db.prepare('UPDATE credential SET secret_hash = ? WHERE id = ?').run(await hashChosenSecret(secret), id);
  db.close();
}
const storedHash = (path: string, id: string) => {
  const db = new Database(path, { readonly: true });
  const row = db.prepare('SELECT secret_hash, generation FROM credential WHERE id = ?').get(id) as { secret_hash: string; generation: number };
  db.close();
  return row;
};

describe('credential store: stores written before sha256', () => {
  it('still admits their devices, re-hashes each at its first good login, and keeps its sessions (same generation)', async () => {
    const cli = store();
    const [a, b] = await cli.addMany([
      { role: 'device', id: 's.a', site: 's', device: 'a' },
      { role: 'device', id: 's.b', site: 's', device: 'b' },
    ]);
    await asOldStore(cli.path, 's.a', a!.secret);
    await asOldStore(cli.path, 's.b', b!.secret);
    expect(storedHash(cli.path, 's.a').secret_hash).toMatch(/^scrypt\$/);
    // A hub started on the old file.
    const hub = store(cli.path, new VerifiedSecrets());
    expect(await hub.verify('s.a', b!.secret)).toBeUndefined();
    expect(storedHash(cli.path, 's.a').secret_hash).toMatch(/^scrypt\$/);
    expect((await hub.verify('s.a', a!.secret))?.generation).toBe(1);
    expect(storedHash(cli.path, 's.a')).toEqual({ secret_hash: hashIssuedSecret(a!.secret), generation: 1 });
    // After a restart of the hub (nothing remembered): the same secret, now by its sha256.
    const restarted = store(cli.path, new VerifiedSecrets());
    expect((await restarted.verify('s.a', a!.secret))?.identity.id).toBe('s.a');
    expect(await restarted.verify('s.a', `${a!.secret}x`)).toBeUndefined();
    // An old row revoked, or rotated, stops its secret at once, remembered or not.
    expect((await restarted.verify('s.b', b!.secret))?.identity.id).toBe('s.b');
    cli.revoke('s.b');
    expect(await restarted.verify('s.b', b!.secret)).toBeUndefined();
    const rotated = await cli.rotate('s.a');
    expect(storedHash(cli.path, 's.a').secret_hash).toBe(hashIssuedSecret(rotated.secret));
    expect(await restarted.verify('s.a', a!.secret)).toBeUndefined();
    expect((await restarted.verify('s.a', rotated.secret))?.generation).toBe(2);
  });

  it('keeps scrypt for a secret that is not one cosafe issued', async () => {
    const s = store();
    await s.add({ role: 'admin', id: 'ops' });
    await asOldStore(s.path, 'ops', 'a passphrase someone chose');
    expect((await s.verify('ops', 'a passphrase someone chose'))?.identity.id).toBe('ops');
    expect(storedHash(s.path, 'ops').secret_hash).toMatch(/^scrypt\$/);
  });
});

describe('credential store', () => {
  it('issues a credential whose secret is never stored, and verifies it', async () => {
    const s = store();
    const { credential, secret } = await s.add({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1', district: 'north' });
    expect(credential.identity).toEqual({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1', district: 'north' });
    expect(secret).toMatch(/^cosafe_[A-Za-z0-9_-]{43}$/);
    expect(storedHash(s.path, 'bakery-12.gw-1').secret_hash).toBe(hashIssuedSecret(secret));
    expect((await s.verify('bakery-12.gw-1', secret))?.identity.id).toBe('bakery-12.gw-1');
    expect(await s.verify('bakery-12.gw-1', `${secret}x`)).toBeUndefined();
    expect(await s.verify('nobody', secret)).toBeUndefined();
    // Not in the file, in any form but its hash.
    expect(readFileSync(s.path).includes(Buffer.from(secret))).toBe(false);
    // Only its owner may read the file.
    expect(statSync(s.path).mode & 0o077).toBe(0);
  });

  it('survives a restart', async () => {
    const first = store();
    const { secret } = await first.add({ role: 'service', id: 'cloud-sync' });
    first.close();
    const again = store(first.path);
    expect((await again.verify('cloud-sync', secret))?.identity.role).toBe('service');
  });

  it('rotation: the old secret stops working, the generation goes up', async () => {
    const s = store();
    const { secret: old } = await s.add({ role: 'device', id: 's.d', site: 's', device: 'd' });
    const { secret, credential } = await s.rotate('s.d');
    expect(credential.generation).toBe(2);
    expect(await s.verify('s.d', old)).toBeUndefined();
    expect((await s.verify('s.d', secret))?.generation).toBe(2);
  });

  it('revocation: the secret stops working, the row stays, the id is not reused', async () => {
    const s = store();
    const { secret } = await s.add({ role: 'admin', id: 'ops' });
    expect(s.revoke('ops').revokedAt).not.toBeNull();
    expect(await s.verify('ops', secret)).toBeUndefined();
    expect(s.list().map((c) => c.identity.id)).toEqual(['ops']);
    expect(await codeOf(s.add({ role: 'admin', id: 'ops' }))).toBe('COSAFE_ERR_CREDENTIALS_CONFLICT');
    expect(await codeOf(() => s.revoke('ops'))).toBe('COSAFE_ERR_CREDENTIALS_UNKNOWN');
    expect(await codeOf(s.rotate('ops'))).toBe('COSAFE_ERR_CREDENTIALS_UNKNOWN');
    expect(await codeOf(s.rotate('nobody'))).toBe('COSAFE_ERR_CREDENTIALS_UNKNOWN');
  });

  it('keeps one district per site', async () => {
    const s = store();
    await s.add({ role: 'gateway', id: 's.g1', site: 's', gateway: 'g1', district: 'north' });
    expect(await codeOf(s.add({ role: 'gateway', id: 's.g2', site: 's', gateway: 'g2', district: 'south' }))).toBe('COSAFE_ERR_CREDENTIALS_CONFLICT');
    await s.add({ role: 'gateway', id: 's.g3', site: 's', gateway: 'g3', district: 'north' });
    expect(s.siteDistrict('s')).toBe('north');
  });

  it("keeps a device's own topic outside the contract, with one owner", async () => {
    const s = store();
    await s.add({ role: 'device', id: 's.store', site: 's', device: 'store', topic: 'zigbee2mqtt/store-sensor' });
    expect(s.siteForeignFilters('s')).toEqual(['zigbee2mqtt/store-sensor']);
    expect(s.siteForeignFilters('other')).toEqual([]);
    expect(await codeOf(s.add({ role: 'device', id: 'x.d', site: 'x', device: 'd', topic: 'zigbee2mqtt/store-sensor' }))).toBe('COSAFE_ERR_CREDENTIALS_CONFLICT');
    expect(await codeOf(s.add({ role: 'device', id: 'x.e', site: 'x', device: 'e', topic: 'cosafe/v1/sites/s/gateways/g/readings' }))).toBe('COSAFE_ERR_CLI_USAGE');
    expect(await codeOf(s.add({ role: 'device', id: 'x.f', site: 'x', device: 'f', topic: 'zigbee2mqtt/+' }))).toBe('COSAFE_ERR_CLI_USAGE');
    s.revoke('s.store');
    expect(s.siteForeignFilters('s')).toEqual([]);
  });

  it("keeps a bridge's prefix to one owner, overlapping no other prefix or device topic", async () => {
    const s = store();
    await s.add({ role: 'bridge', id: 's.z2m', site: 's', prefix: 'zigbee2mqtt' });
    await s.add({ role: 'device', id: 's.door', site: 's', device: 'door', topic: 'vendor/door-1' });
    expect(s.siteForeignFilters('s').sort()).toEqual(['vendor/door-1', 'zigbee2mqtt/#']);
    expect(s.siteForeignFilters('x')).toEqual([]);
    const conflict = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as CosafeError).message;
    expect(await conflict(s.add({ role: 'bridge', id: 'x.z2m', site: 'x', prefix: 'zigbee2mqtt' }))).toBe('prefix "zigbee2mqtt/#" overlaps prefix "zigbee2mqtt/#", which belongs to "s.z2m"; one topic or prefix has one owner');
    expect(await conflict(s.add({ role: 'bridge', id: 'x.sub', site: 'x', prefix: 'zigbee2mqtt/annex' }))).toMatch(/overlaps prefix "zigbee2mqtt\/#"/); // inside another's prefix
    expect(await conflict(s.add({ role: 'bridge', id: 'x.vendor', site: 'x', prefix: 'vendor' }))).toMatch(/overlaps topic "vendor\/door-1", which belongs to "s.door"/); // around another's topic
    expect(await conflict(s.add({ role: 'device', id: 'x.d', site: 'x', device: 'd', topic: 'zigbee2mqtt/kitchen' }))).toMatch(/^topic "zigbee2mqtt\/kitchen" overlaps prefix/);
    for (const prefix of ['zigbee2mqtt/', 'a/+/b', '#', 'cosafe/v1/sites/s', '$SYS', '']) {
      expect(await codeOf(s.add({ role: 'bridge', id: `y.${prefix.length}`, site: 'y', prefix })), prefix).toBe('COSAFE_ERR_CLI_USAGE');
    }
    s.revoke('s.z2m');
    await s.add({ role: 'bridge', id: 'x.z2m-2', site: 'x', prefix: 'zigbee2mqtt' });
    expect(s.siteForeignFilters('x')).toEqual(['zigbee2mqtt/#']);
  });

  it("keeps an owner's sites, and refuses an owner of no site or of one site twice", async () => {
    const first = store();
    const { secret } = await first.add({ role: 'owner', id: 'anna', sites: ['bakery-12', 'bakery-14'] });
    first.close();
    const again = store(first.path);
    expect((await again.verify('anna', secret))?.identity).toEqual({ role: 'owner', id: 'anna', sites: ['bakery-12', 'bakery-14'] });
    expect(await codeOf(again.add({ role: 'owner', id: 'nobody', sites: [] }))).toBe('COSAFE_ERR_CLI_USAGE');
    expect(await codeOf(again.add({ role: 'owner', id: 'twice', sites: ['a', 'a'] }))).toBe('COSAFE_ERR_CLI_USAGE');
  });

  it('refuses identities that are not valid, with every reason', async () => {
    const s = store();
    const err = await s.add({ role: 'gateway', id: 'a/b', site: 'x+', gateway: 'g' }).catch((e: CosafeError) => e);
    expect(err).toBeInstanceOf(CosafeError);
    expect((err as CosafeError).code).toBe('COSAFE_ERR_CLI_USAGE');
    expect((err as CosafeError).details.join('\n')).toMatch(/site: must be/);
    expect((err as CosafeError).details.join('\n')).toMatch(/id: must be/);
    expect(await codeOf(s.add({ role: 'resident', id: 'anonymous' }))).toBe('COSAFE_ERR_CLI_USAGE');
  });

  it("tells another process's changes by data_version", async () => {
    const hub = store();
    const cli = store(hub.path);
    const before = hub.dataVersion();
    expect(hub.dataVersion()).toBe(before);
    await cli.add({ role: 'admin', id: 'ops' });
    expect(hub.dataVersion()).not.toBe(before);
  });

  it('issues many credentials in one go, each working, or none when any entry is wrong', async () => {
    const s = store();
    const issued = await s.addMany([
      { role: 'device', id: 's.th-1', site: 's', device: 'th-1', topic: 'sensors/th-1' },
      { role: 'device', id: 's.th-2', site: 's', device: 'th-2', topic: 'sensors/th-2' },
    ]);
    expect(issued.map((i) => i.credential.identity.id)).toEqual(['s.th-1', 's.th-2']);
    for (const { credential, secret } of issued) expect((await s.verify(credential.identity.id, secret))?.identity.id).toBe(credential.identity.id);
    const err = (await s
      .addMany(
        [
          { role: 'device', id: 's.th-3', site: 's', device: 'th-3', topic: 'sensors/th-3' },
          { role: 'device', id: 's.th-3', site: 's', device: 'th-3b' },
          { role: 'device', id: 's.th-4', site: 's', device: 'th-4', topic: 'sensors/th-1' },
          { role: 'gateway', id: 'bad/id', site: 's', gateway: 'g' },
        ],
        (i) => `devices.csv:${i + 2}`,
      )
      .catch((e: unknown) => e)) as CosafeError;
    expect(err.code).toBe('COSAFE_ERR_CLI_USAGE');
    expect(err.message).toBe('3 of 4 credentials cannot be issued; none was');
    expect(err.details.join('\n')).toMatch(/devices\.csv:3 \(s\.th-3\) identity "s\.th-3" is listed twice \(devices\.csv:2 and devices\.csv:3\)/);
    expect(err.details.join('\n')).toMatch(/devices\.csv:4 \(s\.th-4\) topic "sensors\/th-1" overlaps topic "sensors\/th-1", which belongs to "s\.th-1"/);
    expect(err.details.join('\n')).toMatch(/devices\.csv:5 \(bad\/id\) id: must be/);
    // All or nothing: the good entry of the refused batch was not issued either.
    expect(s.find('s.th-3')).toBeUndefined();
  });

  it('remembers a verified secret, and a revocation or rotation still takes effect at once', async () => {
    const verified = new VerifiedSecrets();
    const hub = store(undefined, verified);
    // Another process (the CLI) with its own memory changes the same file.
    const cli = store(hub.path);
    const [a, b] = await cli.addMany([
      { role: 'device', id: 's.a', site: 's', device: 'a' },
      { role: 'device', id: 's.b', site: 's', device: 'b' },
    ]);
    expect((await hub.verify('s.a', a!.secret))?.generation).toBe(1);
    expect((await hub.verify('s.b', b!.secret))?.generation).toBe(1);
    expect(verified.size).toBe(2);
    // Remembered: still right, and a wrong secret is still refused.
    expect((await hub.verify('s.a', a!.secret))?.identity.id).toBe('s.a');
    expect(await hub.verify('s.a', `${a!.secret}x`)).toBeUndefined();
    expect(await hub.verify('s.a', b!.secret)).toBeUndefined();

    cli.revoke('s.a');
    expect(await hub.verify('s.a', a!.secret)).toBeUndefined();

    const rotated = await cli.rotate('s.b');
    expect(await hub.verify('s.b', b!.secret)).toBeUndefined();
    expect((await hub.verify('s.b', rotated.secret))?.generation).toBe(2);
    expect((await hub.verify('s.b', rotated.secret))?.generation).toBe(2);
    expect(await hub.verify('s.b', b!.secret)).toBeUndefined();
  });

  it('shares what it remembers between two stores of one process, never between two files', async () => {
    const verified = new VerifiedSecrets();
    const broker = store(undefined, verified);
    const http = store(broker.path, verified);
    const { secret } = await broker.add({ role: 'admin', id: 'ops' });
    await broker.verify('ops', secret);
    expect(verified.size).toBe(1);
    http.revoke('ops');
    expect(verified.size).toBe(0);
    expect(await broker.verify('ops', secret)).toBeUndefined();
    // Another file with the same id and (impossibly) the same row is still another store.
    const other = store(undefined, verified);
    await other.add({ role: 'admin', id: 'ops' });
    expect(await other.verify('ops', secret)).toBeUndefined();
  });
});

describe('a new credential store opened by several processes at once', () => {
  // A hub starting while `cosafe credentials add` runs: each found the new columns missing and added them.
  // Three fresh files: the processes race to switch each to WAL too, and one round lost that race one time in six.
  it.each([1, 2, 3])('is set up once: every process opens it (file %i)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cosafe-creds-race-')), 'credentials.db');
    // The build's module (`npm test` builds first), in processes of their own, all opening at the same instant.
    const module = pathToFileURL(resolve(import.meta.dirname, '../../../../dist/broker/auth/credential-store.js')).href;
    const at = Date.now() + 1500;
    const code = `import { CredentialStore } from ${JSON.stringify(module)}; while (Date.now() < ${at}); CredentialStore.open(${JSON.stringify(path)}).close();`;
    const results = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<string>((done) => execFile(process.execPath, ['--input-type=module', '-e', code], (err, _out, stderr) => done(err ? stderr : 'ok')))),
    );
    expect(results).toEqual(Array(8).fill('ok'));
    const s = store(path);
    expect((await s.add({ role: 'bridge', id: 'b-1', site: 'site-a', prefix: 'plant' })).credential.identity).toMatchObject({ id: 'b-1', prefix: 'plant' });
  });
});
