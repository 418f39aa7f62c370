import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { WriteBuffer } from '../../../cloud-sync/influx/write-buffer.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-write-buffer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `reading,site=site-a,device=th-${from + i},metric=temperature,profile=p value=${(from + i) / 10},quality="good",unit="Cel" ${1_764_000_000_000 + from + i}`);

describe('InfluxDB write buffer', () => {
  it('gives back what it was given, line for line, in a file a fraction of the line protocol', () => {
    const path = join(dir, 'compact.db');
    const buffer = new WriteBuffer({ path, maxPoints: 1_000_000 });
    buffer.open();
    const written = Array.from({ length: 40 }, (_, k) => lines(k * 500, 500));
    for (const batch of written) buffer.append(batch, 'reading', 0);
    const claim = buffer.claim(1_000_000)!;
    expect(claim.points).toBe(20_000);
    expect(claim.chunks.join('\n').split('\n')).toEqual(written.flat());
    buffer.close();
    // 20,000 lines of about 120 bytes: 2.4 MB of line protocol, stored deflated (the WAL holds what is not checkpointed yet).
    const bytes = statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    expect(bytes).toBeLessThan(written.flat().join('\n').length / 3);
  });

  it('reads the rows an earlier version wrote as text', () => {
    const path = join(dir, 'earlier.db');
    const old = new Database(path);
    old.exec('CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, points INTEGER NOT NULL, at INTEGER NOT NULL, lines TEXT NOT NULL)');
    old.prepare('INSERT INTO pending (kind, points, at, lines) VALUES (?, ?, ?, ?)').run('reading', 3, 0, lines(0, 3).join('\n'));
    old.close();
    const buffer = new WriteBuffer({ path, maxPoints: 1000 });
    buffer.open();
    buffer.append(lines(3, 2), 'reading', 0);
    const claim = buffer.claim(1000)!;
    expect(claim.chunks.join('\n').split('\n')).toEqual(lines(0, 5));
    buffer.close();
  });
});
