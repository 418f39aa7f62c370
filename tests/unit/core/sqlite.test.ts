import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDurableDatabase, WORKER_CHECKPOINT_PAGES } from '../../../core/sqlite.js';

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

  it('checkpoint after a hundred WAL pages on the alarm path, so no commit holds the event loop for long; a worker thread\'s after a thousand', () => {
    /** WAL frames not yet checkpointed after 300 commits of a page or more each. */
    const framesAfterWrites = (db: ReturnType<typeof openDurableDatabase>) => {
      db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, body BLOB)');
      const insert = db.prepare('INSERT INTO q (body) VALUES (?)');
      for (let i = 0; i < 300; i++) insert.run(Buffer.alloc(3000, i));
      // A checkpoint that copies nothing reports the WAL's frames since its last reset.
      return (db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
    };
    const alarmPath = openDurableDatabase(join(dir, 'inbox.db'));
    const worker = openDurableDatabase(join(dir, 'telemetry.db'), { checkpointPages: WORKER_CHECKPOINT_PAGES });
    try {
      expect(framesAfterWrites(alarmPath)).toBeLessThan(150);
      expect(framesAfterWrites(worker)).toBeGreaterThan(300);
    } finally {
      alarmPath.close();
      worker.close();
    }
  });
});
