import { Readable } from 'node:stream';
import { deserialize, serialize } from 'node:v8';
import MemoryPersistence, { type PersistedSubscription, type PersistenceClient, type StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type Database from 'better-sqlite3';
import { openDurableDatabase } from '../core/sqlite.js';

const Packet = MemoryPersistence.Packet;

/** Rows read per step while a queue is streamed, so a long queue is never in memory at once. */
const STREAM_PAGE = 200;

export interface JournalEntry {
  id: number;
  packet: StoredPacket;
}

/**
 * A durable Aedes persistence in one SQLite file (WAL): what an MQTT server must
 * keep for a session that is not clean [MQTT-3.1.2-4] (its subscriptions and the
 * QoS 1 and 2 messages queued or in flight for it), retained messages, wills,
 * and incoming QoS 2 packets survive a crash of the broker process.
 *
 * Subscriptions and retained messages are also kept in memory by the in-memory
 * persistence this extends (aedes-persistence), so matching a topic costs no
 * disk read; they are written through and loaded back on `setup`. Queues,
 * incoming packets and wills live only in SQLite, so a long queue for a
 * subscriber that is away costs disk, not memory.
 *
 * Every method that changes state returns after its transaction committed: with
 * synchronous=NORMAL in WAL mode the change is in the WAL file and survives a
 * crash of the process, though not a crash of the OS. It passes aedes-persistence's
 * abstract test suite (tests/unit/broker/sqlite-persistence.test.ts).
 *
 * It also holds the broker's inbound journal (see broker/persist-before-ack.ts).
 */
export class SqlitePersistence extends MemoryPersistence {
  private db: Database.Database | undefined;
  private s!: ReturnType<SqlitePersistence['prepare']>;

  constructor(private readonly path: string) {
    super();
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    const db = openDurableDatabase(this.path);
    db.exec(`
      CREATE TABLE IF NOT EXISTS subscription (client_id TEXT NOT NULL, topic TEXT NOT NULL, sub TEXT NOT NULL, PRIMARY KEY (client_id, topic)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS outgoing (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER,
        message_id INTEGER, packet BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS outgoing_client ON outgoing (client_id, seq);
      CREATE INDEX IF NOT EXISTS outgoing_message ON outgoing (client_id, message_id);
      CREATE INDEX IF NOT EXISTS outgoing_origin ON outgoing (client_id, broker_id, broker_counter);
      CREATE TABLE IF NOT EXISTS incoming (client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL, PRIMARY KEY (client_id, message_id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS will (client_id TEXT PRIMARY KEY, broker_id TEXT, packet BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, packet BLOB NOT NULL);
    `);
    this.db = db;
    this.s = this.prepare(db);
    const byClient = new Map<string, PersistedSubscription[]>();
    for (const row of db.prepare('SELECT client_id, sub FROM subscription').all() as { client_id: string; sub: string }[]) {
      byClient.set(row.client_id, [...(byClient.get(row.client_id) ?? []), JSON.parse(row.sub) as PersistedSubscription]);
    }
    for (const [id, subs] of byClient) await super.addSubscriptions({ id }, subs);
    for (const row of db.prepare('SELECT packet FROM retained').all() as { packet: Buffer }[]) await super.storeRetained(unpack(row.packet));
  }

  override async storeRetained(packet: StoredPacket): Promise<void> {
    await super.storeRetained(packet);
    if (!packet.payload || packet.payload.length === 0) this.s.deleteRetained.run(packet.topic);
    else this.s.upsertRetained.run(packet.topic, pack({ ...packet }));
  }

  override async addSubscriptions(client: PersistenceClient, subs: PersistedSubscription[]): Promise<void> {
    await super.addSubscriptions(client, subs);
    this.tx(() => {
      for (const sub of subs) {
        const record: PersistedSubscription = { topic: sub.topic, qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
        if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
        this.s.upsertSub.run(client.id, sub.topic, JSON.stringify(record));
      }
    });
  }

  override async removeSubscriptions(client: PersistenceClient, topics: string[]): Promise<void> {
    await super.removeSubscriptions(client, topics);
    this.tx(() => {
      for (const topic of topics) this.s.deleteSub.run(client.id, topic);
    });
  }

  override async cleanSubscriptions(client: PersistenceClient): Promise<void> {
    await super.cleanSubscriptions(client);
    this.s.deleteSubsOf.run(client.id);
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void> {
    if (subs.length === 0) return;
    const p = new Packet(packet);
    const blob = pack(p);
    this.tx(() => {
      for (const sub of subs) this.s.enqueue.run(sub.clientId, p.brokerId ?? null, p.brokerCounter ?? null, blob);
    });
  }

  async outgoingUpdate(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    // The same message (broker id and counter) gets its packet identifier; or,
    // a message of another broker with the same identifier is replaced (PUBREL).
    if (this.s.setMessageId.run(packet.messageId ?? null, client.id, packet.brokerId ?? null, packet.brokerCounter ?? null).changes > 0) return;
    const row = this.s.byMessageIdOtherBroker.get(client.id, packet.messageId ?? null, packet.brokerId ?? null) as { seq: number } | undefined;
    if (!row) throw new Error('no such packet');
    this.s.replace.run(packet.brokerId ?? null, packet.brokerCounter ?? null, packet.messageId ?? null, pack({ ...packet }), row.seq);
  }

  async outgoingClearMessageId(client: PersistenceClient, packet: StoredPacket): Promise<StoredPacket | undefined> {
    const row = this.s.byMessageId.get(client.id, packet.messageId ?? null) as OutgoingRow | undefined;
    if (!row) return undefined;
    this.s.dequeue.run(row.seq);
    return fromRow(row);
  }

  outgoingStream(client: PersistenceClient): Readable {
    // The queue as it is now (later messages reach the client as they are published), page by page.
    const last = (this.s.lastSeqOf.get(client.id) as { seq: number | null }).seq ?? 0;
    const s = this.s;
    async function* rows() {
      let after = 0;
      for (;;) {
        const page = s.pageOf.all(client.id, after, last, STREAM_PAGE) as OutgoingRow[];
        for (const row of page) yield fromRow(row);
        if (page.length < STREAM_PAGE) return;
        after = page.at(-1)!.seq;
      }
    }
    return Readable.from(rows());
  }

  async incomingStorePacket(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    const p = new Packet(packet);
    p.messageId = packet.messageId;
    this.s.upsertIncoming.run(client.id, packet.messageId, pack(p));
  }

  async incomingGetPacket(client: PersistenceClient, packet: StoredPacket): Promise<StoredPacket> {
    const row = this.s.getIncoming.get(client.id, packet.messageId) as { packet: Buffer } | undefined;
    if (!row) throw new Error('no such packet');
    return unpack(row.packet);
  }

  async incomingDelPacket(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    if (this.s.deleteIncoming.run(client.id, packet.messageId).changes === 0) throw new Error('no such packet');
  }

  async cleanIncoming(client: PersistenceClient): Promise<void> {
    this.s.deleteIncomingOf.run(client.id);
  }

  async putWill(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.broker?.id;
    packet.clientId = client.id;
    this.s.upsertWill.run(client.id, packet.brokerId ?? null, pack({ ...packet }));
  }

  async getWill(client: PersistenceClient): Promise<StoredPacket | undefined> {
    const row = this.s.getWill.get(client.id) as { packet: Buffer } | undefined;
    return row ? unpack(row.packet) : undefined;
  }

  async delWill(client: PersistenceClient): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client);
    this.s.deleteWill.run(client.id);
    return will;
  }

  /** Wills of brokers that are not alive (`brokers` lists the live ones). */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    const rows = this.s.allWills.all() as { broker_id: string | null; packet: Buffer }[];
    return Readable.from(rows.filter((r) => !(r.broker_id && brokers[r.broker_id])).map((r) => unpack(r.packet)));
  }

  override async destroy(): Promise<void> {
    await super.destroy();
    this.db?.close();
    this.db = undefined;
  }

  /* The inbound journal: QoS 1 messages acknowledged but not yet handed on. */

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

  /** Messages queued for one client (for health and tests). */
  queued(clientId: string): number {
    return (this.s.countOf.get(clientId) as { n: number }).n;
  }

  private prepare(db: Database.Database) {
    return {
      upsertRetained: db.prepare('INSERT OR REPLACE INTO retained (topic, packet) VALUES (?, ?)'),
      deleteRetained: db.prepare('DELETE FROM retained WHERE topic = ?'),
      upsertSub: db.prepare('INSERT OR REPLACE INTO subscription (client_id, topic, sub) VALUES (?, ?, ?)'),
      deleteSub: db.prepare('DELETE FROM subscription WHERE client_id = ? AND topic = ?'),
      deleteSubsOf: db.prepare('DELETE FROM subscription WHERE client_id = ?'),
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
      upsertIncoming: db.prepare('INSERT OR REPLACE INTO incoming (client_id, message_id, packet) VALUES (?, ?, ?)'),
      getIncoming: db.prepare('SELECT packet FROM incoming WHERE client_id = ? AND message_id = ?'),
      deleteIncoming: db.prepare('DELETE FROM incoming WHERE client_id = ? AND message_id = ?'),
      deleteIncomingOf: db.prepare('DELETE FROM incoming WHERE client_id = ?'),
      upsertWill: db.prepare('INSERT OR REPLACE INTO will (client_id, broker_id, packet) VALUES (?, ?, ?)'),
      getWill: db.prepare('SELECT packet FROM will WHERE client_id = ?'),
      deleteWill: db.prepare('DELETE FROM will WHERE client_id = ?'),
      allWills: db.prepare('SELECT broker_id, packet FROM will'),
      journalAppend: db.prepare('INSERT INTO journal (packet) VALUES (?)'),
      journalRemove: db.prepare('DELETE FROM journal WHERE id = ?'),
      journalAll: db.prepare('SELECT id, packet FROM journal ORDER BY id'),
    };
  }

  private tx(fn: () => void): void {
    if (!this.db) throw new Error('the broker persistence is not set up');
    this.db.transaction(fn)();
  }
}

interface OutgoingRow {
  seq: number;
  message_id: number | null;
  packet: Buffer;
}

// v8 serialisation keeps Buffers, strings and undefined as they are, like the in-memory persistence.
const pack = (packet: StoredPacket): Buffer => serialize(packet);
const unpack = (blob: Buffer): StoredPacket => deserialize(blob) as StoredPacket;

function fromRow(row: OutgoingRow): StoredPacket {
  const packet = unpack(row.packet);
  if (row.message_id !== null) packet.messageId = row.message_id;
  return packet;
}
