import Database from 'better-sqlite3';
import { CosafeError } from './errors.js';
import { ensurePrivateDatabase } from './private-files.js';

/** WAL pages after which a commit checkpoints, for files written on an event loop that alarms share. */
export const ALARM_PATH_CHECKPOINT_PAGES = 100;
/** SQLite's default, for files only a worker thread writes (telemetry). */
export const WORKER_CHECKPOINT_PAGES = 1000;

/**
 * Opens one of cosafe's durable SQLite files (outbox, broker state, buffers):
 * WAL, synchronous=NORMAL (a committed write survives a crash of the process;
 * FULL where a caller asks for more), and an exclusive lock, so a second process
 * pointed at the same dataDir fails at once with a clear error instead of
 * sharing (and corrupting the meaning of) the same queue. The file is 0600 in
 * a 0700 directory, whatever the umask (core/private-files.ts).
 */
export function openDurableDatabase(path: string, o: { checkpointPages?: number } = {}): Database.Database {
  ensurePrivateDatabase(path);
  // A process that just exited may still be letting go of the lock; a second one that runs does not.
  const db = new Database(path, { timeout: 1000 });
  try {
    // Before WAL is entered, so the lock is held from the first access on and no shared memory is needed.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // 2 MiB of page cache, not SQLite's 16: these files are written in order and read once; measured, the
    // default cost the hub 40 MB of RSS in a burst and bought nothing.
    db.pragma('cache_size = -2048');
    // A checkpoint copies the WAL into the file on the thread that commits, fsyncs included (500 pages:
    // 2.6-3.6 ms measured), and an alarm that comes meanwhile waits. With 1,000 devices reporting through
    // the gateway, alarm max was 17-34 ms over four runs at SQLite's 1,000 pages, 11-23 ms over six at 100,
    // for 5-10 % less throughput in a flood. Files only a worker thread writes, where no alarm waits, keep 1,000.
    db.pragma(`wal_autocheckpoint = ${o.checkpointPages ?? ALARM_PATH_CHECKPOINT_PAGES}`);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new CosafeError('COSAFE_ERR_DATADIR_IN_USE', `${path} is in use by another cosafe process; give each process its own dataDir`, { cause: err });
    }
    throw err;
  }
  return db;
}

/**
 * Opens a SQLite file that a command (`cosafe sites`, `cosafe credentials`) and
 * the running hub use at the same time: WAL, a busy timeout instead of an
 * exclusive lock, readable by its owner only. The hub notices the command's
 * writes through `PRAGMA data_version`.
 */
export function openSharedDatabase(path: string, o: { synchronous?: 'NORMAL' | 'FULL' } = {}): Database.Database {
  // 0600 before SQLite writes the first byte, in a 0700 directory (core/private-files.ts).
  ensurePrivateDatabase(path);
  const db = new Database(path, { timeout: 5000 });
  enterWal(db);
  db.pragma(`synchronous = ${o.synchronous ?? 'NORMAL'}`);
  return db;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Switches a file that several processes open to WAL (openSharedDatabase). When two race to switch
 * a new file, SQLite answers one of them "database is locked" at once instead
 * of waiting out the busy timeout (each holds the read lock the other's switch
 * waits for): one time in six when eight processes opened a fresh credential
 * store together. So it tries again, a few milliseconds apart, for as long as
 * the busy timeout would have waited.
 */
export function enterWal(db: Database.Database, timeoutMs = 5000): void {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= until) throw err;
      // Apart at random, so that the processes that collided do not meet again.
      Atomics.wait(pause, 0, 0, 5 + Math.random() * 20);
    }
  }
}

/**
 * One transaction function for a database, reused for every call:
 * better-sqlite3's `db.transaction(fn)` builds a new wrapper each time it is
 * called, which the broker's profile showed costing more than the writes
 * themselves on paths that run per message. Nested calls become savepoints.
 */
export function transactionRunner(db: Database.Database): <T>(fn: () => T) => T {
  const run = db.transaction((fn: () => unknown) => fn());
  return <T>(fn: () => T): T => run(fn) as T;
}
