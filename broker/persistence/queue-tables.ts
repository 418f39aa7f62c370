import { deserialize, serialize } from 'node:v8';
import MemoryPersistence, { type StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type Database from 'better-sqlite3';
import { transactionRunner } from '../../core/sqlite.js';

const Packet = MemoryPersistence.Packet;

export interface JournalEntry {
  id: number;
  packet: StoredPacket;
}

export interface OutgoingRow {
  seq: number;
  message_id: number | null;
  packet: Buffer;
}

/**
 * The tables of the broker that grow with traffic, in one SQLite file: the
 * QoS 1 and 2 messages queued or in flight per persistent session [MQTT-3.1.2-4],
 * and the inbound journal (broker/persist-before-ack.ts). Synchronous; the
 * broker keeps one set for the alarm lane on its main thread and one for
 * telemetry in a worker thread (telemetry-queue.ts).
 *
 * Journal and queue share the file's WAL, so a later write never survives
 * without an earlier one.
 */
export class QueueTables {
  private readonly s: ReturnType<QueueTables['prepare']>;
  private readonly tx: <T>(fn: () => T) => T;

  constructor(private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS outgoing (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER,
        message_id INTEGER, packet BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS outgoing_client ON outgoing (client_id, seq);
      CREATE INDEX IF NOT EXISTS outgoing_message ON outgoing (client_id, message_id);
      CREATE INDEX IF NOT EXISTS outgoing_origin ON outgoing (client_id, broker_id, broker_counter);
      CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, packet BLOB NOT NULL);
    `);
    this.s = this.prepare(db);
    this.tx = transactionRunner(db);
  }

  enqueue(clientIds: readonly string[], packet: StoredPacket): void {
    if (clientIds.length === 0) return;
    const p = new Packet(packet);
    const blob = pack(p);
    this.tx(() => {
      for (const clientId of clientIds) this.s.enqueue.run(clientId, p.brokerId ?? null, p.brokerCounter ?? null, blob);
    });
  }

  /**
   * The same message (broker id and counter) gets its packet identifier; or, a
   * message of another broker with the same identifier is replaced (PUBREL).
   * False: no such message.
   */
  update(clientId: string, packet: StoredPacket): boolean {
    if (this.s.setMessageId.run(packet.messageId ?? null, clientId, packet.brokerId ?? null, packet.brokerCounter ?? null).changes > 0) return true;
    const row = this.s.byMessageIdOtherBroker.get(clientId, packet.messageId ?? null, packet.brokerId ?? null) as { seq: number } | undefined;
    if (!row) return false;
    this.s.replace.run(packet.brokerId ?? null, packet.brokerCounter ?? null, packet.messageId ?? null, pack({ ...packet }), row.seq);
    return true;
  }

  /** Takes the message with this packet identifier out of the client's queue (its PUBACK came). */
  clear(clientId: string, messageId: number | undefined): StoredPacket | undefined {
    const row = this.s.byMessageId.get(clientId, messageId ?? null) as OutgoingRow | undefined;
    if (!row) return undefined;
    this.s.dequeue.run(row.seq);
    return fromRow(row);
  }

  /** The last queued message of a client now (the end of a stream of its queue). */
  lastSeq(clientId: string): number {
    return (this.s.lastSeqOf.get(clientId) as { seq: number | null }).seq ?? 0;
  }

  /** One page of a client's queue. */
  page(clientId: string, after: number, upTo: number, limit: number): { seq: number; packet: StoredPacket }[] {
    return (this.s.pageOf.all(clientId, after, upTo, limit) as OutgoingRow[]).map((row) => ({ seq: row.seq, packet: fromRow(row) }));
  }

  count(clientId: string): number {
    return (this.s.countOf.get(clientId) as { n: number }).n;
  }

  journalAppend(packet: StoredPacket): number {
    const entry: StoredPacket = { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain };
    if (packet.properties !== undefined) entry.properties = packet.properties;
    return Number(this.s.journalAppend.run(pack(entry)).lastInsertRowid);
  }

  journalRemove(id: number): void {
    this.s.journalRemove.run(id);
  }

  journalEntries(): JournalEntry[] {
    return (this.s.journalAll.all() as { id: number; packet: Buffer }[]).map((r) => ({ id: r.id, packet: unpack(r.packet) }));
  }

  private prepare(db: Database.Database) {
    return {
      enqueue: db.prepare('INSERT INTO outgoing (client_id, broker_id, broker_counter, packet) VALUES (?, ?, ?, ?)'),
      setMessageId: db.prepare(
        `UPDATE outgoing SET message_id = ? WHERE seq = (SELECT seq FROM outgoing WHERE client_id = ? AND broker_id IS ? AND broker_counter IS ? ORDER BY seq LIMIT 1)`,
      ),
      byMessageIdOtherBroker: db.prepare('SELECT seq FROM outgoing WHERE client_id = ? AND message_id = ? AND broker_id IS NOT ? ORDER BY seq LIMIT 1'),
      replace: db.prepare('UPDATE outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, packet = ? WHERE seq = ?'),
      byMessageId: db.prepare('SELECT seq, message_id, packet FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY seq LIMIT 1'),
      dequeue: db.prepare('DELETE FROM outgoing WHERE seq = ?'),
      lastSeqOf: db.prepare('SELECT max(seq) AS seq FROM outgoing WHERE client_id = ?'),
      pageOf: db.prepare('SELECT seq, message_id, packet FROM outgoing WHERE client_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      countOf: db.prepare('SELECT count(*) AS n FROM outgoing WHERE client_id = ?'),
      journalAppend: db.prepare('INSERT INTO journal (packet) VALUES (?)'),
      journalRemove: db.prepare('DELETE FROM journal WHERE id = ?'),
      journalAll: db.prepare('SELECT id, packet FROM journal ORDER BY id'),
    };
  }
}

// v8 serialisation keeps Buffers, strings and undefined as they are, like the in-memory persistence.
export const pack = (packet: StoredPacket): Buffer => serialize(packet);
export const unpack = (blob: Buffer): StoredPacket => deserialize(blob) as StoredPacket;

function fromRow(row: OutgoingRow): StoredPacket {
  const packet = unpack(row.packet);
  if (row.message_id !== null) packet.messageId = row.message_id;
  return packet;
}
