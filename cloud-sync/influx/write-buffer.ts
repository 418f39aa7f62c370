import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import { openDurableDatabase } from '../../core/sqlite.js';

export type PointKind = 'reading' | 'event';

/** Rows taken together for one write request: a contiguous range of the buffer. */
export interface Claim {
  first: number;
  last: number;
  points: number;
  /** Each row's lines as stored (joined by newlines): a request's body is these joined, not split and joined again. */
  chunks: string[];
}

export interface WriteBufferOptions {
  path: string;
  /** Points kept at most; past it the oldest readings not in flight are dropped (events never). */
  maxPoints: number;
  /** WAL pages after which a commit checkpoints (core/sqlite.ts); the default suits a file written where alarms wait. */
  checkpointPages?: number;
}

/**
 * The InfluxDB writer's durable buffer: line protocol waiting for InfluxDB, in
 * SQLite (WAL, synchronous=NORMAL: a committed append survives a crash of the
 * process, not a crash of the OS). One row per incoming message; a write request
 * claims a range of rows, and they are deleted when InfluxDB has taken them.
 * Claims are handed out oldest first; a claim whose write failed is released and
 * handed out again before anything newer. Lines InfluxDB rejects as invalid are
 * kept aside in `dead_letter`, for a person to look at.
 */
export class WriteBuffer {
  private db: Database.Database | undefined;
  private s!: ReturnType<WriteBuffer['prepare']>;
  private points = 0;
  private unclaimedPoints = 0;
  /** Every row up to here is claimed, written or released. */
  private cursor = 0;
  private readonly released: Claim[] = [];
  private deadLetters = 0;

  constructor(private readonly o: WriteBufferOptions) {}

  open(): void {
    const db = openDurableDatabase(this.o.path, this.o.checkpointPages ? { checkpointPages: this.o.checkpointPages } : {});
    // AUTOINCREMENT: ids are never reused, even after the table empties, because the claim cursor relies on them growing.
    db.exec(`
      CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, points INTEGER NOT NULL, at INTEGER NOT NULL, lines TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS dead_letter (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, status INTEGER, error TEXT NOT NULL, points INTEGER NOT NULL, lines TEXT NOT NULL);
    `);
    this.db = db;
    this.s = this.prepare(db);
    this.points = (db.prepare('SELECT coalesce(sum(points), 0) AS n FROM pending').get() as { n: number }).n;
    this.unclaimedPoints = this.points;
    this.deadLetters = (db.prepare('SELECT coalesce(sum(points), 0) AS n FROM dead_letter').get() as { n: number }).n;
  }

  /** Stores lines; returns how many points of the oldest readings were dropped to stay within the limit. */
  append(lines: readonly string[], kind: PointKind, now: number): number {
    if (lines.length === 0) return 0;
    return this.requireDb().transaction(() => {
      this.s.insert.run(kind, lines.length, now, deflateRawSync(lines.join('\n'), DEFLATE));
      this.points += lines.length;
      this.unclaimedPoints += lines.length;
      let dropped = 0;
      while (this.points > this.o.maxPoints) {
        const victim = this.s.oldestUnclaimedReading.get(this.cursor) as { id: number; points: number } | undefined;
        if (!victim) break;
        this.s.delete.run(victim.id);
        this.points -= victim.points;
        this.unclaimedPoints -= victim.points;
        dropped += victim.points;
      }
      return dropped;
    })();
  }

  /** The oldest lines not in flight, up to about `maxPoints` (whole rows), or undefined. */
  claim(maxPoints: number): Claim | undefined {
    const again = this.released.shift();
    if (again) return again;
    // Sizes first, then the text of just the rows taken.
    const rows = this.s.unclaimedSizes.all(this.cursor, 1000) as { id: number; points: number }[];
    let points = 0;
    let last: number | undefined;
    for (const row of rows) {
      if (last !== undefined && points + row.points > maxPoints) break;
      last = row.id;
      points += row.points;
    }
    if (last === undefined) return undefined;
    const first = rows[0]!.id;
    const texts = this.s.linesIn.all(first, last) as { lines: string | Buffer }[];
    this.cursor = last;
    this.unclaimedPoints -= points;
    return { first, last, points, chunks: texts.map((r) => rowText(r.lines)) };
  }

  /** InfluxDB has the claim's points (or they were set aside): they leave the buffer. */
  complete(claim: Claim): void {
    if (!this.db) return;
    this.s.deleteRange.run(claim.first, claim.last);
    this.points -= claim.points;
  }

  /** The write failed: the claim is handed out again first. */
  release(claim: Claim): void {
    this.released.push(claim);
    this.released.sort((a, b) => a.first - b.first);
  }

  setAside(lines: readonly string[], status: number | undefined, error: string, now: number): void {
    this.s.deadLetter.run(now, status ?? null, error, lines.length, lines.join('\n'));
    this.deadLetters += lines.length;
  }

  /** When the oldest line not yet claimed arrived (epoch ms), or undefined when none waits. */
  oldestUnclaimedAt(): number | undefined {
    if (this.unclaimedPoints <= 0) return undefined;
    return (this.s.oldestUnclaimedAt.get(this.cursor) as { at: number } | undefined)?.at;
  }

  stats(): { points: number; unclaimedPoints: number; released: number; setAside: number } {
    return { points: this.points, unclaimedPoints: this.unclaimedPoints, released: this.released.length, setAside: this.deadLetters };
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private prepare(db: Database.Database) {
    return {
      insert: db.prepare('INSERT INTO pending (kind, points, at, lines) VALUES (?, ?, ?, ?)'),
      unclaimedSizes: db.prepare('SELECT id, points FROM pending WHERE id > ? ORDER BY id LIMIT ?'),
      linesIn: db.prepare('SELECT lines FROM pending WHERE id BETWEEN ? AND ? ORDER BY id'),
      oldestUnclaimedAt: db.prepare('SELECT at FROM pending WHERE id > ? ORDER BY id LIMIT 1'),
      oldestUnclaimedReading: db.prepare("SELECT id, points FROM pending WHERE id > ? AND kind = 'reading' ORDER BY id LIMIT 1"),
      delete: db.prepare('DELETE FROM pending WHERE id = ?'),
      deleteRange: db.prepare('DELETE FROM pending WHERE id BETWEEN ? AND ?'),
      deadLetter: db.prepare('INSERT INTO dead_letter (at, status, error, points, lines) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  private requireDb(): Database.Database {
    if (!this.db) throw new Error('the InfluxDB write buffer is not open');
    return this.db;
  }
}

/**
 * Rows are deflated: line protocol repeats its series on every line, and a
 * 500-reading batch of 65 KB is 5 KB (level 1: 0.15 ms to deflate, 0.08 ms to
 * inflate). With SQLite's own rows and pages the file takes 34 bytes per
 * buffered reading against 169 (`npm run bench:backlog`): five times the
 * readings per GB through an InfluxDB outage. Rows an earlier version wrote
 * are text, and read as they are.
 */
const DEFLATE = { level: 1 };

function rowText(stored: string | Buffer): string {
  return typeof stored === 'string' ? stored : inflateRawSync(stored).toString('utf8');
}
