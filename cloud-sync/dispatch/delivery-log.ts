import type Database from 'better-sqlite3';
import { openDurableDatabase } from '../../core/sqlite.js';

/** Delivered keys remembered, to recognise a resent message after a restart. */
const DELIVERED_KEPT = 10_000;

/** webhook: a Standard Webhooks POST; mqtt: a publish on a contract topic (dispatch, gateway command). */
export type DeliveryChannel = 'webhook' | 'mqtt';

/** A webhook's `data` (the dispatch message), or an MQTT publish. */
export type DeliveryPayload = WebhookData | MqttPublish;

export interface WebhookData {
  eventId: string;
  class: string;
  state: string;
  time: number;
  device: string;
  [k: string]: unknown;
}

export interface MqttPublish {
  topic: string;
  payload: Record<string, unknown>;
}

export interface PendingDelivery<P extends DeliveryPayload = DeliveryPayload> {
  key: string;
  channel: DeliveryChannel;
  /** The fire department (or, for a gateway command, the gateway) it goes to. */
  department: string;
  message: P;
}

/**
 * The dispatcher's memory on disk (SQLite, WAL): deliveries not yet taken by
 * their receiver (a 2xx, a PUBACK), and the keys recently delivered. It shares
 * the dispatch database with the alarm store, so a transition and the
 * deliveries it causes are recorded in one transaction: a crash neither loses
 * a delivery (it is resumed at the next start) nor sends a delivered one again.
 */
export class DeliveryLog {
  private db: Database.Database | undefined;
  private owned = false;
  private s!: ReturnType<DeliveryLog['prepare']>;

  constructor(private readonly path: string) {}

  /** Opens its own file. */
  open(): void {
    this.attach(openDurableDatabase(this.path));
    this.owned = true;
  }

  /** Uses a database another part opened (the alarm store's), to share its transactions. */
  attach(db: Database.Database): void {
    db.exec(`
      CREATE TABLE IF NOT EXISTS pending (key TEXT PRIMARY KEY, department TEXT NOT NULL, event TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS delivered (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE);
    `);
    // Added with MQTT dispatch: older rows are webhooks.
    const columns = (db.prepare('PRAGMA table_info(pending)').all() as { name: string }[]).map((c) => c.name);
    if (!columns.includes('channel')) db.exec("ALTER TABLE pending ADD COLUMN channel TEXT NOT NULL DEFAULT 'webhook'");
    this.db = db;
    this.s = this.prepare(db);
  }

  has(key: string): boolean {
    return this.s.isPending.get(key) !== undefined || this.s.isDelivered.get(key) !== undefined;
  }

  addPending(p: PendingDelivery): void {
    this.s.addPending.run(p.key, p.department, JSON.stringify(p.message), p.channel);
  }

  delivered(key: string): void {
    this.db?.transaction(() => {
      this.s.removePending.run(key);
      const n = Number(this.s.addDelivered.run(key).lastInsertRowid);
      if (n % 1000 === 0) this.s.prune.run(n - DELIVERED_KEPT);
    })();
  }

  pending(channel: DeliveryChannel): PendingDelivery[] {
    return (this.s.allPending.all(channel) as { key: string; department: string; event: string }[]).map((r) => ({
      key: r.key,
      channel,
      department: r.department,
      message: JSON.parse(r.event) as DeliveryPayload,
    }));
  }

  /** Deliveries not yet taken of one alarm's messages (and its gateway commands): what a successor worker sends again. */
  pendingOf(alarmId: string): PendingDelivery[] {
    return (this.s.pendingOf.all(alarmId, alarmId) as { key: string; department: string; event: string; channel: DeliveryChannel }[]).map((r) => ({
      key: r.key,
      channel: r.channel,
      department: r.department,
      message: JSON.parse(r.event) as DeliveryPayload,
    }));
  }

  close(): void {
    if (this.owned) this.db?.close();
    this.db = undefined;
  }

  private prepare(db: Database.Database) {
    return {
      isPending: db.prepare('SELECT 1 FROM pending WHERE key = ?'),
      isDelivered: db.prepare('SELECT 1 FROM delivered WHERE key = ?'),
      addPending: db.prepare('INSERT OR IGNORE INTO pending (key, department, event, channel) VALUES (?, ?, ?, ?)'),
      removePending: db.prepare('DELETE FROM pending WHERE key = ?'),
      addDelivered: db.prepare('INSERT OR REPLACE INTO delivered (key) VALUES (?)'),
      prune: db.prepare('DELETE FROM delivered WHERE n <= ?'),
      allPending: db.prepare('SELECT key, department, event FROM pending WHERE channel = ?'),
      pendingOf: db.prepare("SELECT key, department, event, channel FROM pending WHERE json_extract(event, '$.alarmId') = ? OR json_extract(event, '$.payload.alarmId') = ?"),
    };
  }
}
