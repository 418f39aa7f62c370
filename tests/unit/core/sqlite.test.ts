import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDurableDatabase } from '../../../core/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('durable SQLite files', () => {
  it('are WAL, and a second opener of the same file is told clearly that it is in use', () => {
    const path = join(dir, 'nested', 'outbox.db');
    const first = openDurableDatabase(path);
    expect(first.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(() => openDurableDatabase(path)).toThrow(expect.objectContaining({ code: 'COSAFE_ERR_DATADIR_IN_USE' }));
    first.close();
    openDurableDatabase(path).close();
  });
});
