import type Database from 'better-sqlite3';
import type { Reading } from '../../broker/contract/index.js';
import { openDurableDatabase, transactionRunner } from '../../core/sqlite.js';

export interface TelemetryOutboxOptions {
  path: string;
  site: string;
  gateway: string;
  /** This run's boot id: batches sealed now carry it (with a sequence number that starts at 1). */
  boot: string;
  /** Readings kept at most (sealed batches and open readings together); past it the oldest go. */
  maxTelemetryReadings: number;
  /** Readings per batch (one MQTT message). */
  batchMaxReadings: number;
}

export interface BatchMessage {
  id: number;
  payload: string;
  readings: number;
}

export interface TelemetryOutboxStats {
  /** Readings not yet acknowledged by the hub (in batches and open). */
  readings: number;
  /** Of those, readings not yet in a batch. */
  openReadings: number;
  /** Batches sent and awaiting their PUBACK. */
  inFlight: number;
}

/**
 * The telemetry lane of the gateway's durable outbox: every reading is written
 * here (SQLite, WAL) before it counts as accepted, and leaves only when the hub
 * has acknowledged its batch (QoS 1 PUBACK, `ack`). Events have a file of their
 * own (event-outbox.ts), so they never wait for telemetry's writes.
 *
 * Durability: a committed transaction is in the WAL file, so it survives a crash
 * of the process (SIGKILL) as soon as the call returns. Telemetry is written with
 * synchronous=NORMAL (no flush per write: a crash of the OS or a power cut may
 * lose the last writes).
 *
 * Readings are written one row each ("open"), then sealed into batches of the
 * contract (gateway, boot, seq): a batch keeps its boot and seq for good, so a
 * resend after a reconnect or a restart is recognised as the same batch by
 * cloud-sync, and a batch of an earlier boot is not mistaken for one of this boot.
 *
 * Order: batches go oldest first, but after a reconnect the backlog (every batch
 * there was at that moment) alternates with batches sealed since, so live data is
 * not starved by a long backlog. Telemetry is bounded: past
 * `maxTelemetryReadings` the oldest readings that are not in flight are dropped
 * (whole batches), and the count is returned so the caller can raise it.
 */
export class TelemetryOutbox {
  private db: Database.Database | undefined;
  private stmts!: ReturnType<TelemetryOutbox['prepare']>;
  private seq = 0;
  private sealedReadings = 0;
  private openReadings = 0;
  /** When the oldest open reading arrived (ms), for the batch delay; undefined when none. */
  private openSince: number | undefined;
  private backlogCursor = 0;
  private backlogMark = 0;
  private liveCursor = 0;
  private preferLive = false;
  private readonly inFlight = new Set<number>();

  constructor(private readonly o: TelemetryOutboxOptions) {}

  open(now: number): void {
    const db = openDurableDatabase(this.o.path);
    // AUTOINCREMENT: ids are never reused, even after a table empties, because the send cursors rely on them growing.
    db.exec(`
      CREATE TABLE IF NOT EXISTS reading (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY AUTOINCREMENT, boot TEXT NOT NULL, seq INTEGER NOT NULL, readings INTEGER NOT NULL, payload TEXT NOT NULL);
    `);
    this.db = db;
    this.stmts = this.prepare(db);
    this.openReadings = (db.prepare('SELECT count(*) AS n FROM reading').get() as { n: number }).n;
    this.sealedReadings = (db.prepare('SELECT coalesce(sum(readings), 0) AS n FROM batch').get() as { n: number }).n;
    // Open readings of an earlier run have waited long enough: seal them at the first chance.
    this.openSince = this.openReadings > 0 ? now - 86_400_000 : undefined;
    this.markBacklog();
  }

  /** Writes readings; returns how many of the oldest were dropped to stay within the limit. */
  addReadings(readings: readonly Reading[], now: number): number {
    if (readings.length === 0) return 0;
    return this.tx(() => {
      for (const r of readings) this.stmts.insertReading.run(JSON.stringify(r));
      this.openReadings += readings.length;
      this.openSince ??= now;
      while (this.openReadings >= this.o.batchMaxReadings) this.sealOne(now);
      return this.enforceLimit();
    });
  }

  /**
   * Events an earlier version kept in this file (before events had one of their
   * own), oldest first, for the event outbox to take over; `dropLegacyEvents`
   * once it has them.
   */
  legacyEvents(): string[] {
    const db = this.requireDb();
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event'").get();
    return table ? (db.prepare('SELECT body FROM event ORDER BY id').all() as { body: string }[]).map((r) => r.body) : [];
  }

  dropLegacyEvents(): void {
    this.requireDb().exec('DROP TABLE IF EXISTS event');
  }

  /** Batches sealed by this run so far (a new one is something to send). */
  get batchesSealed(): number {
    return this.seq;
  }

  /** Epoch ms since the oldest open reading waits, or undefined when none waits. */
  get openSinceMs(): number | undefined {
    return this.openSince;
  }

  /** Seals every open reading into batches (the batch delay has passed). */
  sealOpen(now: number): void {
    if (this.openReadings === 0) return;
    this.tx(() => {
      while (this.openReadings > 0) this.sealOne(now);
    });
  }

  /**
   * After a (re)connect: every batch there is now is backlog, replayed oldest
   * first; batches sealed from now on are live, and the two alternate.
   */
  markBacklog(): void {
    const max = (this.requireDb().prepare('SELECT coalesce(max(id), 0) AS id FROM batch').get() as { id: number }).id;
    this.backlogMark = max;
    this.liveCursor = max;
  }

  /** The next batch to send, marked in flight; undefined when there is nothing to send. */
  take(): BatchMessage | undefined {
    const backlog = this.backlogCursor < this.backlogMark ? this.firstFree(this.backlogCursor, this.backlogMark) : undefined;
    if (!backlog) this.backlogCursor = this.backlogMark;
    const live = this.firstFree(Math.max(this.liveCursor, this.backlogMark), Number.MAX_SAFE_INTEGER);
    let row: { id: number; readings: number } | undefined;
    if (backlog && live) {
      row = this.preferLive ? live : backlog;
      this.preferLive = !this.preferLive;
    } else row = backlog ?? live;
    if (!row) return undefined;
    if (row === backlog) this.backlogCursor = row.id;
    else this.liveCursor = row.id;
    this.inFlight.add(row.id);
    // The payload (tens of KB) of the batch taken only, not of the other candidate.
    const { payload } = this.stmts.batchPayload.get(row.id) as { payload: string };
    return { id: row.id, payload, readings: row.readings };
  }

  /** The hub acknowledged it (PUBACK): it leaves the outbox. */
  ack(m: BatchMessage): void {
    if (!this.db) return;
    this.inFlight.delete(m.id);
    if (this.stmts.deleteBatch.run(m.id).changes > 0) this.sealedReadings -= m.readings;
  }

  /** Sending failed: it goes back to be sent again, in its place. */
  release(m: BatchMessage): void {
    this.inFlight.delete(m.id);
    if (m.id <= this.backlogMark) this.backlogCursor = Math.min(this.backlogCursor, m.id - 1);
    else this.liveCursor = Math.min(this.liveCursor, m.id - 1);
  }

  stats(): TelemetryOutboxStats {
    return { readings: this.sealedReadings + this.openReadings, openReadings: this.openReadings, inFlight: this.inFlight.size };
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private prepare(db: Database.Database) {
    return {
      insertReading: db.prepare('INSERT INTO reading (body) VALUES (?)'),
      openBatch: db.prepare('SELECT id, body FROM reading ORDER BY id LIMIT ?'),
      deleteOpenUpTo: db.prepare('DELETE FROM reading WHERE id <= ?'),
      insertBatch: db.prepare('INSERT INTO batch (boot, seq, readings, payload) VALUES (?, ?, ?, ?)'),
      batchIdsAfter: db.prepare('SELECT id, readings FROM batch WHERE id > ? AND id <= ? ORDER BY id LIMIT ?'),
      batchPayload: db.prepare('SELECT payload FROM batch WHERE id = ?'),
      oldestBatches: db.prepare('SELECT id, readings FROM batch ORDER BY id LIMIT ?'),
      deleteBatch: db.prepare('DELETE FROM batch WHERE id = ?'),
      deleteOldestOpen: db.prepare('DELETE FROM reading WHERE id IN (SELECT id FROM reading ORDER BY id LIMIT ?)'),
    };
  }

  private sealOne(now: number): void {
    const rows = this.stmts.openBatch.all(this.o.batchMaxReadings) as { id: number; body: string }[];
    const last = rows.at(-1);
    if (!last) {
      this.openReadings = 0;
      this.openSince = undefined;
      return;
    }
    const seq = ++this.seq;
    // Built as text from the stored readings: no parse and re-serialise per reading.
    const head = JSON.stringify({ v: 1, gateway: this.o.gateway, site: this.o.site, boot: this.o.boot, seq, sentAt: now });
    const payload = `${head.slice(0, -1)},"readings":[${rows.map((r) => r.body).join(',')}]}`;
    this.stmts.insertBatch.run(this.o.boot, seq, rows.length, payload);
    this.stmts.deleteOpenUpTo.run(last.id);
    this.openReadings -= rows.length;
    this.sealedReadings += rows.length;
    this.openSince = this.openReadings > 0 ? now : undefined;
  }

  /** Drops the oldest readings not in flight until the limit holds; returns how many. */
  private enforceLimit(): number {
    let dropped = 0;
    while (this.sealedReadings + this.openReadings > this.o.maxTelemetryReadings) {
      const victim = (this.stmts.oldestBatches.all(this.inFlight.size + 1) as { id: number; readings: number }[]).find((b) => !this.inFlight.has(b.id));
      if (victim) {
        this.stmts.deleteBatch.run(victim.id);
        this.sealedReadings -= victim.readings;
        dropped += victim.readings;
        continue;
      }
      const over = Math.min(this.openReadings, this.sealedReadings + this.openReadings - this.o.maxTelemetryReadings);
      if (over <= 0) break;
      this.stmts.deleteOldestOpen.run(over);
      this.openReadings -= over;
      dropped += over;
    }
    return dropped;
  }

  /** The first batch after `after` (up to `upTo`) that is not in flight. */
  private firstFree(after: number, upTo: number): { id: number; readings: number } | undefined {
    // In-flight rows are at most the window, so one query of window + 1 rows finds a free one if there is one.
    const rows = this.stmts.batchIdsAfter.all(after, upTo, this.inFlight.size + 1) as { id: number; readings: number }[];
    return rows.find((r) => !this.inFlight.has(r.id));
  }

  private run: { db: Database.Database; tx: <T>(fn: () => T) => T } | undefined;

  private tx<T>(fn: () => T): T {
    const db = this.requireDb();
    if (this.run?.db !== db) this.run = { db, tx: transactionRunner(db) };
    return this.run.tx(fn);
  }

  private requireDb(): Database.Database {
    if (!this.db) throw new Error('the outbox is not open');
    return this.db;
  }
}
