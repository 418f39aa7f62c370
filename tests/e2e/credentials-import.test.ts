import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { runCosafe } from '../helpers/cosafe-cli.js';

let t: TestBroker | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('cosafe credentials import', () => {
  it('gives every device of the file a working login, secrets only in a 0600 file; a revoked one stops at once though the hub remembers it', async () => {
    t = await startTestBroker();
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-import-'));
    const file = join(dir, 'devices.csv');
    writeFileSync(file, ['role,site,device,topic', ...Array.from({ length: 5 }, (_, i) => `device,s1,th-${i},sensors/th-${i}`)].join('\n'));
    const out = join(dir, 'secrets.csv');
    const r = await runCosafe(['credentials', 'import', file, '--data-dir', t.dataDir, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/issued 5 credentials/);
    expect(r.stdout).not.toMatch(/cosafe_/);
    expect(statSync(out).mode & 0o077).toBe(0);
    const logins = readFileSync(out, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    expect(logins.map((l) => l[0])).toEqual(['s1.th-0', 's1.th-1', 's1.th-2', 's1.th-3', 's1.th-4']);
    for (const [id, , username, password] of logins) {
      const c = await t.connect({ username, password, clientId: id });
      expect(c.connected).toBe(true);
      await c.endAsync(true);
    }
    // A second run with the same file issues nothing and keeps the first secrets file.
    const again = await runCosafe(['credentials', 'import', file, '--data-dir', t.dataDir, '--out', join(dir, 'again.csv')]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/);

    // Remembered by the hub (it logged in above); revoked by another process; refused at once.
    const [id, , username, password] = logins[0]!;
    const revoke = await runCosafe(['credentials', 'revoke', id!, '--data-dir', t.dataDir]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await connectError(t.broker.url, { username, password, clientId: 'after-revoke' })).code).toBe(4); // bad user name or password, as for any secret that does not work
    // The others still work.
    const other = await t.connect({ username: logins[1]![2], password: logins[1]![3], clientId: 'other' });
    expect(other.connected).toBe(true);
  });

  it('issues nothing when one entry is wrong, naming each by line', async () => {
    t = await startTestBroker();
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-import-'));
    const file = join(dir, 'devices.csv');
    writeFileSync(file, 'role,site,device\ndevice,s1,ok-1\ngateway,s1,\ndevice,s1,ok-1\n');
    const r = await runCosafe(['credentials', 'import', file, '--data-dir', t.dataDir, '--out', join(dir, 's.csv')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/devices\.csv:3 gateway is required for role gateway/);
    expect(t.store.find('s1.ok-1')).toBeUndefined();
  });
});
