import type Database from 'better-sqlite3';
import { openDurableDatabase } from '../core/sqlite.js';
import { signalPriority } from '../core/vocabulary.js';
import { parseTopic } from '../broker/contract/index.js';

export interface InboxMessage {
  id: number;
  topic: string;
  payload: Buffer;
}

/** Gateway status comes after every signal: it is a picture of the gateway, not a signal to act on. */
const STATUS_PRIORITY = 3;

/**
 * The alarm lane's inbox in cloud-sync: events and gateway status taken from
 * the broker session, in a SQLite file of their own, handled by priority:
 * alarm signals, then supervisory, then trouble, then status (`signalPriority`,
 * NFPA 72 §10.7: a receiving station handles an alarm ahead of lesser signals),
 * oldest first within each.
 *
 * Why: mqtt.js hands a session's messages over one at a time, in the order the
 * broker queued them, and the broker queues them in the order they came. When
 * a site's power fails, a thousand devices report silent at once; their
 * trouble signals reached the fire department's lane in seconds of work, and a
 * fire alarm raised meanwhile waited behind all of them. With the inbox a
 * message is taken (one autocommitted insert, tens of microseconds) and
 * acknowledged to the broker at once, so the whole backlog is read in
 * milliseconds and the alarm goes first.
 *
 * Nothing is lost: the PUBACK leaves only after the insert is committed (WAL:
 * it survives a crash of the process), and a message leaves the inbox only
 * once every sink has taken it. A crash between the sinks and the removal
 * hands the message to the sinks again at the next start, which the contract
 * allows (events carry a stable id; the alarm lifecycle counts and skips
 * duplicates).
 */
export class AlarmInbox {
  private readonly db: Database.Database;
  private readonly s: ReturnType<AlarmInbox['prepare']>;
  /** Rows in the table, kept as they are added and removed (read per message for the gauge, so not a query). */
  private size: number;

  constructor(path: string) {
    this.db = openDurableDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS inbox_by_priority ON inbox (priority, id);
    `);
    this.s = this.prepare(this.db);
    this.size = (this.s.count.get() as { n: number }).n;
  }

  /** Takes a message: once this returns it is committed. Throws if the disk refused it (then it is not taken). */
  add(topic: string, payload: Buffer): number {
    const id = Number(this.s.insert.run(priorityOf(topic, payload), topic, payload).lastInsertRowid);
    this.size++;
    return id;
  }

  /** The message to handle next: the highest priority, the oldest within it. */
  next(): InboxMessage | undefined {
    const row = this.s.next.get() as { id: number; topic: string; payload: Buffer } | undefined;
    return row ? { id: row.id, topic: row.topic, payload: row.payload } : undefined;
  }

  /** Every sink took it. */
  remove(id: number): void {
    this.size -= this.s.remove.run(id).changes;
  }

  count(): number {
    return this.size;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prepare(db: Database.Database) {
    return {
      insert: db.prepare('INSERT INTO inbox (priority, topic, payload) VALUES (?, ?, ?)'),
      next: db.prepare('SELECT id, topic, payload FROM inbox ORDER BY priority, id LIMIT 1'),
      remove: db.prepare('DELETE FROM inbox WHERE id = ?'),
      count: db.prepare('SELECT count(*) AS n FROM inbox'),
    };
  }
}

/** An event's class decides; a payload that cannot be read goes first (the consumer logs and counts it, and it is never held back). */
export function priorityOf(topic: string, payload: Buffer): number {
  if (parseTopic(topic)?.kind !== 'events') return STATUS_PRIORITY;
  try {
    const cls = (JSON.parse(payload.toString('utf8')) as { class?: unknown }).class;
    return signalPriority(typeof cls === 'string' ? cls : undefined);
  } catch {
    return signalPriority(undefined);
  }
}
