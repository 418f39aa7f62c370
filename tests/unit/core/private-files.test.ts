import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../../broker/auth/credential-store.js';
import { ensurePrivateDir, makeTreePrivate } from '../../../core/private-files.js';
import { openDurableDatabase } from '../../../core/sqlite.js';

const root = mkdtempSync(join(tmpdir(), 'cosafe-modes-'));
const original = process.umask();
afterEach(() => void process.umask(original));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o7777;
let n = 0;

/** Every entry under `dir`, with its mode, as `path mode` in octal. */
function modes(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => `${join(e.parentPath, e.name).slice(dir.length + 1)} ${mode(join(e.parentPath, e.name)).toString(8)}`);
}

describe.each([0o000, 0o022])('files in the data directory with umask %s', (umask) => {
  it('makes the directory 0700 and every store and its WAL 0600', () => {
    process.umask(umask);
    const dataDir = join(root, `d${++n}`, 'state');
    const db = openDurableDatabase(join(dataDir, 'outbox-gw.db'));
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    const store = CredentialStore.open(join(dataDir, 'credentials.db'));
    expect(mode(dataDir)).toBe(0o700);
    const entries = modes(dataDir);
    // The WAL exists while the stores are open.
    expect(entries).toContain('outbox-gw.db-wal 600');
    expect(entries.filter((e) => !e.endsWith(' 600'))).toEqual([]);
    db.close();
    store.close();
  });

  it('tightens a data directory and stores an older version left readable by others', () => {
    process.umask(umask);
    const dataDir = join(root, `d${++n}`);
    mkdirSync(dataDir, { mode: 0o777 });
    chmodSync(dataDir, 0o777);
    writeFileSync(join(dataDir, 'broker.db'), '');
    chmodSync(join(dataDir, 'broker.db'), 0o666);
    openDurableDatabase(join(dataDir, 'broker.db')).close();
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(join(dataDir, 'broker.db'))).toBe(0o600);
  });
});

describe('private directories', () => {
  it('refuses a shared directory such as /tmp rather than use it', () => {
    const shared = join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    expect(() => ensurePrivateDir(shared)).toThrow(expect.objectContaining({ code: 'COSAFE_ERR_DATADIR_UNSAFE' }));
    expect(mode(shared)).toBe(0o1777);
  });

  it('makes a tree a library wrote (the OPC-UA certificate store) private, to the last file', () => {
    process.umask(0);
    const pki = join(root, 'pki');
    mkdirSync(join(pki, 'own', 'private'), { recursive: true, mode: 0o777 });
    writeFileSync(join(pki, 'own', 'private', 'private_key.pem'), 'key', { mode: 0o666 });
    makeTreePrivate(pki);
    expect(modes(pki).sort()).toEqual(['own 700', 'own/private 700', 'own/private/private_key.pem 600']);
  });
});
