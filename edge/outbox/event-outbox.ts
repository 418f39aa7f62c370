import { closeSync, fdatasync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { AlarmEvent } from '../../broker/contract/index.js';
import { openDurableDatabase } from '../../core/sqlite.js';
import { signalPriority } from '../../core/vocabulary.js';
import type { ConditionRecord, EngineSnapshot } from '../alarm-engine.js';

export interface EventOutboxOptions {
  path: string;
  /** Flush every event to the disk (see the class comment). */
  fsyncEvents: boolean;
}

export interface EventMessage {
  id: number;
  payload: string;
}

/** A condition's state after a change, or undefined when it is back to normal with no history worth keeping. */
export type ConditionChange = [key: string, record: ConditionRecord | undefined];

/**
 * The alarm lane of the gateway's outbox: alarm, supervisory and trouble
 * events and the state of every condition, in a SQLite file of their own
 * (WAL), apart from telemetry, so an alarm never shares a transaction, a WAL
 * checkpoint or a flush with readings.
 *
 * One transaction per change (`record`): a condition's new state and the event
 * it raised are written together, so a crash leaves both or neither. (Before,
 * the state lived in a JSON file written after the event: a crash between the
 * two raised the same alarm again, under a new event id, at the next reading.)
 *
 * Durability: a committed transaction is in the WAL file and survives a crash
 * of the process at once. With `fsyncEvents` it is also flushed to the disk
 * (fdatasync of the WAL, as synchronous=FULL would, but on libuv's thread pool
 * and not on the event loop), while the event is already on its way to the hub.
 * One flush serves every event committed before it began (group commit).
 * `accepted(ids)` resolves once the events survive a power cut of the gateway:
 * flushed to its disk, or acknowledged by the hub, whichever comes first (a
 * disk that takes seconds to flush must not hold up the device that raised
 * the next alarm).
 *
 * Events leave when the hub acknowledges them (QoS 1 PUBACK, `ack`): alarm signals
 * first, then supervisory, then trouble (`signalPriority`, NFPA 72 §10.7), oldest
 * first within each. One condition's events share its class, so they keep their
 * order; a fire alarm raised while a thousand devices report silent goes ahead of
 * their trouble signals instead of waiting seconds behind them.
 */
export class EventOutbox {
  private db: Database.Database | undefined;
  private s!: ReturnType<EventOutbox['prepare']>;
  private walFd: number | undefined;
  private count = 0;
  private readonly inFlight = new Set<number>();
  /** Group commit: transactions committed, and how many of them are known to be on the disk. */
  private committed = 0;
  private flushedUpTo = 0;
  private flushing = false;
  private waiting: { upTo: number; ids: Set<number>; resolve: () => void }[] = [];
  private flushError: string | undefined;

  constructor(private readonly o: EventOutboxOptions) {}

  open(): void {
    const db = openDurableDatabase(this.o.path);
    // AUTOINCREMENT: ids are never reused, even after the table empties, so within a priority they keep the order events were raised in.
    db.exec(`
      CREATE TABLE IF NOT EXISTS event (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS condition (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    // An outbox of an earlier version has no priority: its events are taken as alarms (0), so none waits behind a trouble signal.
    if (!(db.prepare('PRAGMA table_info(event)').all() as { name: string }[]).some((c) => c.name === 'priority')) {
      db.exec('ALTER TABLE event ADD COLUMN priority INTEGER NOT NULL DEFAULT 0');
    }
    db.exec('CREATE INDEX IF NOT EXISTS event_by_priority ON event (priority, id)');
    this.db = db;
    this.s = this.prepare(db);
    this.count = (db.prepare('SELECT count(*) AS n FROM event').get() as { n: number }).n;
    if (this.o.fsyncEvents) {
      try {
        // The WAL exists now (the statements above wrote to it); flushing it makes every commit in it durable.
        this.walFd = openSync(`${this.o.path}-wal`, 'r+');
      } catch {
        // No WAL file to flush from here: fall back to SQLite's own flush on every commit.
        db.pragma('synchronous = FULL');
      }
    }
  }

  /** The conditions as they were last recorded, for the alarm engine to start from. */
  snapshot(): EngineSnapshot {
    const conditions: EngineSnapshot['conditions'] = {};
    for (const row of this.s.allConditions.all() as { key: string; state: string }[]) conditions[row.key] = JSON.parse(row.state) as ConditionRecord;
    return { v: 1, conditions };
  }

  /** One condition as last recorded. */
  condition(key: string): ConditionRecord | undefined {
    const row = this.s.getCondition.get(key) as { state: string } | undefined;
    return row ? (JSON.parse(row.state) as ConditionRecord) : undefined;
  }

  /** Events and the conditions they changed, in one transaction; returns the events' ids. Throws if the disk refused it (then nothing was written). */
  record(events: readonly AlarmEvent[], changes: readonly ConditionChange[]): number[] {
    const db = this.requireDb();
    const ids = db.transaction(() => {
      const out = events.map((event) => Number(this.s.insertEvent.run(JSON.stringify(event), signalPriority(event.class)).lastInsertRowid));
      for (const [key, record] of changes) {
        if (record) this.s.upsertCondition.run(key, JSON.stringify(record));
        else this.s.deleteCondition.run(key);
      }
      return out;
    })();
    this.count += events.length;
    this.committed++;
    if (this.walFd !== undefined) this.flush();
    return ids;
  }

  /**
   * Imports condition state kept by an earlier version (its JSON state file),
   * once: true if it did, false if this outbox had done so before.
   */
  importConditions(snapshot: EngineSnapshot): boolean {
    const db = this.requireDb();
    return db.transaction(() => {
      if (this.s.getMeta.get('conditions-imported')) return false;
      for (const [key, record] of Object.entries(snapshot.conditions)) this.s.upsertCondition.run(key, JSON.stringify(record));
      this.s.setMeta.run('conditions-imported', new Date().toISOString());
      return true;
    })();
  }

  /** Adds events an earlier version left in its single outbox file (the same ids may come again: they are resends). */
  importEvents(bodies: readonly string[]): void {
    if (bodies.length === 0) return;
    this.requireDb().transaction(() => {
      for (const body of bodies) this.s.insertEvent.run(body, signalPriority(classOf(body)));
    })();
    this.count += bodies.length;
    this.committed++;
  }

  /** Resolves once everything recorded so far is on the disk (at once without `fsyncEvents`). */
  flushed(): Promise<void> {
    return this.wait(new Set([-1]));
  }

  /** Resolves once these events are flushed to the disk or acknowledged by the hub (at once without `fsyncEvents`). */
  accepted(ids: readonly number[]): Promise<void> {
    const open = new Set(ids.filter((id) => this.inFlight.has(id) || this.unsent(id)));
    return open.size === 0 ? Promise.resolve() : this.wait(open);
  }

  private wait(ids: Set<number>): Promise<void> {
    if (this.walFd === undefined || this.flushedUpTo >= this.committed) return Promise.resolve();
    const upTo = this.committed;
    return new Promise((resolve) => {
      this.waiting.push({ upTo, ids, resolve });
      this.flush();
    });
  }

  private unsent(id: number): boolean {
    return this.s.exists.get(id) !== undefined;
  }

  /** The last flush error, if the last flush failed. */
  get error(): string | undefined {
    return this.flushError;
  }

  /** The first event not in flight (by priority, then oldest), marked in flight; undefined when there is none. */
  take(): EventMessage | undefined {
    // In flight are at most `maxInFlight` (16 by default): the first rows past them are read, never the whole table.
    const rows = this.s.next.all(this.inFlight.size + 1) as { id: number; body: string }[];
    const row = rows.find((r) => !this.inFlight.has(r.id));
    if (!row) return undefined;
    this.inFlight.add(row.id);
    return { id: row.id, payload: row.body };
  }

  /** The hub acknowledged it (PUBACK): it leaves the outbox. */
  ack(m: EventMessage): void {
    this.inFlight.delete(m.id);
    if (this.db && this.s.deleteEvent.run(m.id).changes > 0) this.count--;
    // The hub has it: for whoever waits on this event, it is safe now.
    const done = this.waiting.filter((w) => w.ids.delete(m.id) && w.ids.size === 0);
    if (done.length) {
      this.waiting = this.waiting.filter((w) => !done.includes(w));
      for (const w of done) w.resolve();
    }
  }

  /** Sending failed (the connection dropped): it is sent again, in its place. */
  release(m: EventMessage): void {
    this.inFlight.delete(m.id);
  }

  /** An alarm signal (fire, gas, CO, waterflow, intrusion: the first priority) waits for the hub: the link hurries to reconnect. */
  alarmPending(): boolean {
    return this.db !== undefined && this.count > 0 && this.s.alarmPending.get(signalPriority('fire')) !== undefined;
  }

  stats(): { events: number; inFlight: number } {
    return { events: this.count, inFlight: this.inFlight.size };
  }

  close(): void {
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
    // Whoever waits for a flush learns nothing more from a closed file; the events are committed.
    for (const w of this.waiting.splice(0)) w.resolve();
    this.db?.close();
    this.db = undefined;
  }

  private flush(): void {
    if (this.flushing || this.walFd === undefined) return;
    const upTo = this.committed;
    this.flushing = true;
    fdatasync(this.walFd, (err) => {
      this.flushing = false;
      // A failed flush is a failing disk: the event is committed and goes to the hub; say so, do not hold the device forever.
      this.flushError = err?.message;
      this.flushedUpTo = Math.max(this.flushedUpTo, upTo);
      const done = this.waiting.filter((w) => w.upTo <= this.flushedUpTo);
      this.waiting = this.waiting.filter((w) => w.upTo > this.flushedUpTo);
      for (const w of done) w.resolve();
      if (this.waiting.length) this.flush();
    });
  }

  private prepare(db: Database.Database) {
    return {
      insertEvent: db.prepare('INSERT INTO event (body, priority) VALUES (?, ?)'),
      exists: db.prepare('SELECT 1 FROM event WHERE id = ?'),
      next: db.prepare('SELECT id, body FROM event ORDER BY priority, id LIMIT ?'),
      deleteEvent: db.prepare('DELETE FROM event WHERE id = ?'),
      alarmPending: db.prepare('SELECT 1 FROM event WHERE priority = ? LIMIT 1'),
      allConditions: db.prepare('SELECT key, state FROM condition'),
      getCondition: db.prepare('SELECT state FROM condition WHERE key = ?'),
      upsertCondition: db.prepare('INSERT OR REPLACE INTO condition (key, state) VALUES (?, ?)'),
      deleteCondition: db.prepare('DELETE FROM condition WHERE key = ?'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    };
  }

  private requireDb(): Database.Database {
    if (!this.db) throw new Error('the event outbox is not open');
    return this.db;
  }
}

/** The signal class an event's body names, if it can be read (an earlier version's outbox). */
function classOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { class?: unknown }).class as string | undefined;
  } catch {
    return undefined;
  }
}
