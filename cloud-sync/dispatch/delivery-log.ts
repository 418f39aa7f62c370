import type Database from 'better-sqlite3';
import type { AlarmEvent } from '../../broker/contract/index.js';
import { openDurableDatabase } from '../../core/sqlite.js';

/** Delivered ids remembered, to recognise a resent event after a restart. */
const DELIVERED_KEPT = 10_000;

export interface PendingDelivery {
  key: string;
  department: string;
  event: AlarmEvent;
}

/**
 * The dispatcher's memory on disk (SQLite, WAL): alarm deliveries not yet
 * acknowledged by their fire department, and the ids recently delivered. An
 * alarm is recorded here before cloud-sync acknowledges it to the broker, so a
 * crash of cloud-sync neither loses a delivery in progress (it is resumed at the
 * next start) nor sends a delivered one again when the broker redelivers it.
 */
export class DeliveryLog {
  private db: Database.Database | undefined;
  private s!: ReturnType<DeliveryLog['prepare']>;

  constructor(private readonly path: string) {}

  open(): void {
    const db = openDurableDatabase(this.path);
    db.exec(`
      CREATE TABLE IF NOT EXISTS pending (key TEXT PRIMARY KEY, department TEXT NOT NULL, event TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS delivered (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE);
    `);
    this.db = db;
    this.s = this.prepare(db);
  }

  has(key: string): boolean {
    return this.s.isPending.get(key) !== undefined || this.s.isDelivered.get(key) !== undefined;
  }

  addPending(key: string, department: string, event: AlarmEvent): void {
    this.s.addPending.run(key, department, JSON.stringify(event));
  }

  delivered(key: string): void {
    this.db?.transaction(() => {
      this.s.removePending.run(key);
      const n = Number(this.s.addDelivered.run(key).lastInsertRowid);
      if (n % 1000 === 0) this.s.prune.run(n - DELIVERED_KEPT);
    })();
  }

  pending(): PendingDelivery[] {
    return (this.s.allPending.all() as { key: string; department: string; event: string }[]).map((r) => ({ key: r.key, department: r.department, event: JSON.parse(r.event) as AlarmEvent }));
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private prepare(db: Database.Database) {
    return {
      isPending: db.prepare('SELECT 1 FROM pending WHERE key = ?'),
      isDelivered: db.prepare('SELECT 1 FROM delivered WHERE key = ?'),
      addPending: db.prepare('INSERT OR IGNORE INTO pending (key, department, event) VALUES (?, ?, ?)'),
      removePending: db.prepare('DELETE FROM pending WHERE key = ?'),
      addDelivered: db.prepare('INSERT OR REPLACE INTO delivered (key) VALUES (?)'),
      prune: db.prepare('DELETE FROM delivered WHERE n <= ?'),
      allPending: db.prepare('SELECT key, department, event FROM pending'),
    };
  }
}
