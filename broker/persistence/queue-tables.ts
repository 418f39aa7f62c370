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
 * At most this many rows remembered per client between their queueing and
 * their sending (past it, a subscriber that is away falls back to the index),
 * and at most this many in flight per client before identifiers are written
 * to the file as for QoS 2 (a client that never acknowledges costs disk, not memory).
 */
const REMEMBERED_PER_CLIENT = 20_000;
const IN_FLIGHT_PER_CLIENT = 65_536;

interface Flying {
  seq: number;
  packet: StoredPacket;
}

/** A client's messages in flight: by identifier (oldest first), and the identifier of each row. */
interface InFlight {
  byId: Map<number, Flying[]>;
  idOf: Map<number, number>;
}

/**
 * The tables of the broker that grow with traffic, in one SQLite file: the
 * QoS 1 and 2 messages queued or in flight per persistent session [MQTT-3.1.2-4],
 * and the inbound journal of older versions (broker/persist-before-ack.ts).
 * Synchronous; the broker keeps one set for the alarm lane on its main thread
 * and one for telemetry in a worker thread (queue.ts, queue-worker.ts).
 *
 * Journal and queue share the file's WAL, so a later write never survives
 * without an earlier one.
 *
 * A QoS 1 message's packet identifier is kept in memory only, not written
 * to its row: the identifier is the session's state between this process and
 * the client, and what must survive a crash is the message. After a restart
 * the queue is sent again under new identifiers, which for QoS 1 is the
 * duplicate a client must accept anyway [MQTT-4.3.2] (cloud-sync knows an
 * event by its id; a gateway finds a condition already raised). That saves
 * an UPDATE and an index per message: with a thousand devices publishing,
 * writing the identifier was an eighth of the broker's work. QoS 2 keeps its identifiers in the
 * file (PUBREL must find its message after a restart).
 */
export class QueueTables {
  private readonly s: ReturnType<QueueTables['prepare']>;
  private readonly tx: <T>(fn: () => T) => T;
  /** The row each message got when it was queued, by its broker counter (for `update`: no search). */
  private readonly queuedRows = new Map<string, { brokerId: string | undefined; seq: Map<number, number> }>();
  /**
   * The QoS 1 messages in flight per client, by packet identifier, oldest
   * first: identifiers wrap at 65,535, and a PUBACK is for the oldest message
   * sent under its identifier (as the file's `ORDER BY seq` had it).
   */
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS outgoing (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER,
        message_id INTEGER, packet BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS outgoing_client ON outgoing (client_id, seq);
      DROP INDEX IF EXISTS outgoing_message;
      CREATE INDEX IF NOT EXISTS outgoing_message_set ON outgoing (client_id, message_id) WHERE message_id IS NOT NULL;
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
      for (const clientId of clientIds) this.remember(clientId, p, Number(this.s.enqueue.run(clientId, p.brokerId ?? null, p.brokerCounter ?? null, blob).lastInsertRowid));
    });
  }

  /**
   * The same message (broker id and counter) gets its packet identifier; or, a
   * message of another broker with the same identifier is replaced (PUBREL).
   * False: no such message.
   */
  update(clientId: string, packet: StoredPacket): boolean {
    const messageId = packet.messageId ?? null;
    const seq = this.recall(clientId, packet) ?? (this.s.byOrigin.get(clientId, packet.brokerId ?? null, packet.brokerCounter ?? null) as { seq: number } | undefined)?.seq;
    if (seq !== undefined) {
      if (packet.cmd === 'publish' && packet.qos === 1 && packet.messageId !== undefined && this.fly(clientId, packet, seq)) return true;
      if (this.s.setMessageIdOf.run(messageId, seq).changes > 0) return true;
    }
    const row = this.s.byMessageIdOtherBroker.get(clientId, messageId, packet.brokerId ?? null) as { seq: number } | undefined;
    if (!row) return false;
    this.s.replace.run(packet.brokerId ?? null, packet.brokerCounter ?? null, messageId, pack({ ...packet }), row.seq);
    return true;
  }

  /** Takes the message with this packet identifier out of the client's queue (its PUBACK came). */
  clear(clientId: string, messageId: number | undefined): StoredPacket | undefined {
    const flying = messageId === undefined ? undefined : this.inFlight.get(clientId);
    const list = flying?.byId.get(messageId!);
    while (list && list.length > 0) {
      const known = list.shift()!;
      flying!.idOf.delete(known.seq);
      if (list.length === 0) flying!.byId.delete(messageId!);
      if (flying!.idOf.size === 0) this.inFlight.delete(clientId);
      if (this.s.dequeue.run(known.seq).changes > 0) return known.packet;
    }
    const row = this.s.byMessageId.get(clientId, messageId ?? null) as OutgoingRow | undefined;
    if (!row) return undefined;
    this.s.dequeue.run(row.seq);
    return fromRow(row);
  }

  private remember(clientId: string, packet: StoredPacket, seq: number): void {
    if (packet.brokerCounter === undefined) return;
    let rows = this.queuedRows.get(clientId);
    if (!rows) this.queuedRows.set(clientId, (rows = { brokerId: packet.brokerId, seq: new Map() }));
    // One broker's counters per client (the embedded broker has one id); a counter is unique only with its id.
    if (rows.brokerId !== packet.brokerId || rows.seq.size >= REMEMBERED_PER_CLIENT) return;
    rows.seq.set(packet.brokerCounter, seq);
  }

  private recall(clientId: string, packet: StoredPacket): number | undefined {
    const rows = this.queuedRows.get(clientId);
    if (!rows || packet.brokerCounter === undefined || rows.brokerId !== packet.brokerId) return undefined;
    const seq = rows.seq.get(packet.brokerCounter);
    if (seq === undefined) return undefined;
    rows.seq.delete(packet.brokerCounter);
    if (rows.seq.size === 0) this.queuedRows.delete(clientId);
    return seq;
  }

  /** Remembers a QoS 1 message as in flight; false when the client has too many (then the file keeps the identifier). */
  private fly(clientId: string, packet: StoredPacket, seq: number): boolean {
    let flying = this.inFlight.get(clientId);
    if (!flying) this.inFlight.set(clientId, (flying = { byId: new Map(), idOf: new Map() }));
    const earlier = flying.idOf.get(seq);
    if (earlier !== undefined) {
      // Sent again (the client came back): under the same identifier, still one message in flight.
      if (earlier === packet.messageId) return true;
      this.land(flying, earlier, seq);
    }
    if (flying.idOf.size >= IN_FLIGHT_PER_CLIENT) return false;
    // The packet Aedes sends, not a copy: it lives as long as the message is in flight anyway.
    const entry = { seq, packet };
    const list = flying.byId.get(packet.messageId!);
    if (list) list.push(entry);
    else flying.byId.set(packet.messageId!, [entry]);
    flying.idOf.set(seq, packet.messageId!);
    return true;
  }

  /** Forgets that a row was in flight under an identifier (it is sent again under another). */
  private land(flying: InFlight, messageId: number, seq: number): void {
    const list = flying.byId.get(messageId) ?? [];
    const i = list.findIndex((f) => f.seq === seq);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) flying.byId.delete(messageId);
    flying.idOf.delete(seq);
  }

  /** The last queued message of a client now (the end of a stream of its queue). */
  lastSeq(clientId: string): number {
    return (this.s.lastSeqOf.get(clientId) as { seq: number | null }).seq ?? 0;
  }

  /** One page of a client's queue. */
  page(clientId: string, after: number, upTo: number, limit: number): { seq: number; packet: StoredPacket }[] {
    const rows = this.s.pageOf.all(clientId, after, upTo, limit) as OutgoingRow[];
    // A message in flight when the client went away is sent again under its identifier [MQTT-4.4.0-1].
    const idOf = this.inFlight.get(clientId)?.idOf;
    return rows.map((row) => {
      const packet = fromRow(row);
      const id = idOf?.get(row.seq);
      if (packet.messageId === undefined && id !== undefined) packet.messageId = id;
      this.remember(clientId, packet, row.seq);
      return { seq: row.seq, packet };
    });
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
      byOrigin: db.prepare('SELECT seq FROM outgoing WHERE client_id = ? AND broker_id IS ? AND broker_counter IS ? ORDER BY seq LIMIT 1'),
      setMessageIdOf: db.prepare('UPDATE outgoing SET message_id = ? WHERE seq = ?'),
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
