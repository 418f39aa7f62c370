import type Database from 'better-sqlite3';
import { transactionRunner } from './sqlite.js';

/**
 * A group stays open another turn while at least `extendAt` writes joined in
 * the last, up to `maxWrites` or `maxAgeMs`. 32: with a thousand devices each
 * reporting once a second, the turns that carry an alarm have a few writes and
 * commit at once; a flood's turns have hundreds.
 */
export interface GroupCommitOptions {
  extendAt?: number;
  maxWrites?: number;
  maxAgeMs?: number;
}
const DEFAULTS: Required<GroupCommitOptions> = { extendAt: 32, maxWrites: 512, maxAgeMs: 1 };

/**
 * Group commit for a SQLite file written by many small operations (the
 * broker's queues: two or three writes per QoS 1 message, from every
 * device): the operations of one turn of the event loop share one
 * transaction, committed when the turn ends (setImmediate), and each caller
 * learns of its write only once that transaction is committed. So a PUBACK
 * that waits for its write still means "in the file" (persist before
 * acknowledge), while a thousand messages cost one commit and one WAL append
 * of the pages they share instead of a thousand.
 *
 * While writes keep coming fast (a flood: at least `extendAt` joined in the
 * last turn), the group stays open one more turn, up to `maxWrites` writes or
 * `maxAgeMs`: with a thousand devices publishing, groups of two or three
 * writes cost three times as much per write as groups of thirty (a commit
 * writes every page the group touched). A write at rest (an alarm on a quiet
 * hub) still commits at the end of its own turn.
 *
 * Each operation runs in a savepoint of its own (better-sqlite3 nests
 * `transaction()` as a savepoint), unless it is atomic by itself, so one that
 * throws takes back only its own writes and the others still commit. If the
 * commit itself fails, every operation of the group fails, and nothing of it
 * is in the file.
 */
export class GroupCommit {
  private open = false;
  private openedAt = 0;
  /** Writes in the group, and their count when its end was last considered. */
  private writes = 0;
  private counted = 0;
  private generation = 0;
  /** One promise per group, settled by its commit: every write of the group waits on it (no promise of its own to make and settle). */
  private committed: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;

  private readonly savepoint: <T>(fn: () => T) => T;
  private readonly o: Required<GroupCommitOptions>;

  constructor(
    private readonly db: Database.Database,
    options: GroupCommitOptions = {},
  ) {
    this.savepoint = transactionRunner(db);
    this.o = { ...DEFAULTS, ...options };
  }

  /**
   * Runs `fn` in the group's transaction now; resolves with its result once
   * committed. `atomic`: `fn` is atomic by itself (one statement that changes
   * the file, or a transaction of its own), so it needs no savepoint: two
   * statements fewer per write on the broker's per-message paths.
   */
  write<T>(fn: () => T, atomic = false): Promise<T> {
    if (!this.open) this.begin();
    let result: T;
    try {
      result = atomic ? fn() : this.savepoint(fn);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.writes++;
    const committed = this.committed!.promise;
    return result === undefined ? (committed as Promise<T>) : committed.then(() => result);
  }

  /** Commits what is open now (also before the file is closed). */
  commit(): void {
    if (!this.open) return;
    this.open = false;
    const committed = this.committed!;
    this.committed = undefined;
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // The transaction is gone already; the error that matters is the commit's.
      }
      committed.reject(err as Error);
      return;
    }
    committed.resolve();
  }

  private begin(): void {
    this.db.exec('BEGIN IMMEDIATE');
    this.open = true;
    this.openedAt = performance.now();
    this.writes = 0;
    this.counted = 0;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    // A group whose every write threw has nobody waiting on it: its failed commit is not an unhandled rejection.
    promise.catch(() => {});
    this.committed = { promise, resolve, reject };
    const generation = ++this.generation;
    const endOfTurn = () => {
      if (!this.open || generation !== this.generation) return;
      const joined = this.writes - this.counted;
      this.counted = this.writes;
      if (joined >= this.o.extendAt && this.writes < this.o.maxWrites && performance.now() - this.openedAt < this.o.maxAgeMs) setImmediate(endOfTurn);
      else this.commit();
    };
    setImmediate(endOfTurn);
  }
}
