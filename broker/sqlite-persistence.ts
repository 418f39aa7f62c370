import { Readable } from 'node:stream';
import MemoryPersistence, { type PersistedSubscription, type PersistenceClient, type StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type Database from 'better-sqlite3';
import { openDurableDatabase } from '../core/sqlite.js';
import { GroupCommit } from '../core/group-commit.js';
import { localQueue, workerQueue, type Queue } from './persistence/queue.js';
import { QueueTables, pack, unpack } from './persistence/queue-tables.js';

const Packet = MemoryPersistence.Packet;

/** Rows read per step while a queue is streamed, so a long queue is never in memory at once. */
const STREAM_PAGE = 200;

export type QueueLane = 'alarm' | 'telemetry';

/** Where a journal entry is: which lane's file, which row. */
export interface JournalRef {
  lane: QueueLane;
  id: number;
}

export interface JournalEntry {
  ref: JournalRef;
  packet: StoredPacket;
}

export interface SqlitePersistenceOptions {
  /**
   * A SQLite file of its own, on a worker thread, for the queues and journal
   * of telemetry topics (`isTelemetry`): their writes, WAL checkpoints and
   * flushes then never stall the broker's event loop, where alarms are
   * handled. Without it, everything is in the one file.
   */
  telemetryPath?: string;
  isTelemetry?: (topic: string) => boolean;
}

/**
 * A durable Aedes persistence in SQLite (WAL): what an MQTT server must keep
 * for a session that is not clean [MQTT-3.1.2-4] (its subscriptions and the
 * QoS 1 and 2 messages queued or in flight for it), retained messages, wills,
 * and incoming QoS 2 packets survive a crash of the broker process.
 *
 * Two lanes: messages on telemetry topics are queued (and journaled) in a file
 * of their own on a worker thread (`telemetryPath`); everything else (events,
 * status, sessions, retained messages, wills) stays in the main file on this
 * thread, so an alarm's writes never wait behind a reading batch's.
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
 * abstract test suite, with and without the telemetry lane
 * (tests/unit/broker/sqlite-persistence.test.ts).
 *
 * It also holds the broker's inbound journal (see broker/persist-before-ack.ts).
 */
export class SqlitePersistence extends MemoryPersistence {
  private db: Database.Database | undefined;
  private s!: ReturnType<SqlitePersistence['prepare']>;
  private alarm: Queue | undefined;
  /** Every write to broker.db: one transaction per turn of the event loop, each write answered once it is committed. */
  private group: GroupCommit | undefined;
  private telemetry: Queue | undefined;
  /** Packet identifiers in flight on the telemetry lane, per client, so a PUBACK goes straight to its lane. */
  private readonly telemetryIds = new Map<string, Set<number>>();

  constructor(
    private readonly path: string,
    private readonly options: SqlitePersistenceOptions = {},
  ) {
    super();
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    const db = openDurableDatabase(this.path);
    db.exec(`
      CREATE TABLE IF NOT EXISTS subscription (client_id TEXT NOT NULL, topic TEXT NOT NULL, sub TEXT NOT NULL, PRIMARY KEY (client_id, topic)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS incoming (client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL, PRIMARY KEY (client_id, message_id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS will (client_id TEXT PRIMARY KEY, broker_id TEXT, packet BLOB NOT NULL) WITHOUT ROWID;
    `);
    this.db = db;
    this.s = this.prepare(db);
    this.group = new GroupCommit(db);
    this.alarm = localQueue(new QueueTables(db), this.group);
    if (this.options.telemetryPath) {
      try {
        this.telemetry = await workerQueue(this.options.telemetryPath);
      } catch (err) {
        db.close();
        this.db = undefined;
        throw err;
      }
    }
    const byClient = new Map<string, PersistedSubscription[]>();
    for (const row of db.prepare('SELECT client_id, sub FROM subscription').all() as { client_id: string; sub: string }[]) {
      byClient.set(row.client_id, [...(byClient.get(row.client_id) ?? []), JSON.parse(row.sub) as PersistedSubscription]);
    }
    for (const [id, subs] of byClient) await super.addSubscriptions({ id }, subs);
    for (const row of db.prepare('SELECT packet FROM retained').all() as { packet: Buffer }[]) await super.storeRetained(unpack(row.packet));
  }

  override async storeRetained(packet: StoredPacket): Promise<void> {
    await super.storeRetained(packet);
    await this.write(() => {
      if (!packet.payload || packet.payload.length === 0) this.s.deleteRetained.run(packet.topic);
      else this.s.upsertRetained.run(packet.topic, pack({ ...packet }));
    });
  }

  override async addSubscriptions(client: PersistenceClient, subs: PersistedSubscription[]): Promise<void> {
    await super.addSubscriptions(client, subs);
    await this.write(() => {
      for (const sub of subs) {
        const record: PersistedSubscription = { topic: sub.topic, qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
        if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
        this.s.upsertSub.run(client.id, sub.topic, JSON.stringify(record));
      }
    });
  }

  override async removeSubscriptions(client: PersistenceClient, topics: string[]): Promise<void> {
    await super.removeSubscriptions(client, topics);
    await this.write(() => {
      for (const topic of topics) this.s.deleteSub.run(client.id, topic);
    });
  }

  override async cleanSubscriptions(client: PersistenceClient): Promise<void> {
    await super.cleanSubscriptions(client);
    await this.write(() => this.s.deleteSubsOf.run(client.id));
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void> {
    if (subs.length === 0) return;
    await this.queueOf(packet.topic).enqueue(
      subs.map((s) => s.clientId),
      packet,
    );
  }

  async outgoingUpdate(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    const queue = this.queueOf(packet.topic);
    if (!(await queue.update(client.id, packet))) throw new Error('no such packet');
    if (queue === this.telemetry && packet.messageId !== undefined) {
      let ids = this.telemetryIds.get(client.id);
      if (!ids) this.telemetryIds.set(client.id, (ids = new Set()));
      ids.add(packet.messageId);
    }
  }

  async outgoingClearMessageId(client: PersistenceClient, packet: StoredPacket): Promise<StoredPacket | undefined> {
    const ids = this.telemetryIds.get(client.id);
    if (this.telemetry && packet.messageId !== undefined && ids?.delete(packet.messageId)) return this.telemetry.clear(client.id, packet.messageId);
    // Not known to be telemetry (or known before a restart): the alarm lane first, it is on this thread.
    const found = await this.requireAlarm().clear(client.id, packet.messageId);
    if (found || !this.telemetry) return found;
    return this.telemetry.clear(client.id, packet.messageId);
  }

  outgoingStream(client: PersistenceClient): Readable {
    // The queues as they are now (later messages reach the client as they are published), page by page, the alarm lane first.
    const queues = [this.requireAlarm(), ...(this.telemetry ? [this.telemetry] : [])];
    async function* rows() {
      const ends = await Promise.all(queues.map((q) => q.lastSeq(client.id)));
      for (const [i, queue] of queues.entries()) {
        let after = 0;
        for (;;) {
          const page = await queue.page(client.id, after, ends[i]!, STREAM_PAGE);
          for (const row of page) yield row.packet;
          if (page.length < STREAM_PAGE) break;
          after = page.at(-1)!.seq;
        }
      }
    }
    return Readable.from(rows());
  }

  async incomingStorePacket(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    const p = new Packet(packet);
    p.messageId = packet.messageId;
    await this.write(() => this.s.upsertIncoming.run(client.id, packet.messageId, pack(p)));
  }

  async incomingGetPacket(client: PersistenceClient, packet: StoredPacket): Promise<StoredPacket> {
    const row = this.s.getIncoming.get(client.id, packet.messageId) as { packet: Buffer } | undefined;
    if (!row) throw new Error('no such packet');
    return unpack(row.packet);
  }

  async incomingDelPacket(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    if ((await this.write(() => this.s.deleteIncoming.run(client.id, packet.messageId))).changes === 0) throw new Error('no such packet');
  }

  async cleanIncoming(client: PersistenceClient): Promise<void> {
    await this.write(() => this.s.deleteIncomingOf.run(client.id));
  }

  async putWill(client: PersistenceClient, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.broker?.id;
    packet.clientId = client.id;
    await this.write(() => this.s.upsertWill.run(client.id, packet.brokerId ?? null, pack({ ...packet })));
  }

  async getWill(client: PersistenceClient): Promise<StoredPacket | undefined> {
    const row = this.s.getWill.get(client.id) as { packet: Buffer } | undefined;
    return row ? unpack(row.packet) : undefined;
  }

  async delWill(client: PersistenceClient): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client);
    await this.write(() => this.s.deleteWill.run(client.id));
    return will;
  }

  /** Wills of brokers that are not alive (`brokers` lists the live ones). */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    const rows = this.s.allWills.all() as { broker_id: string | null; packet: Buffer }[];
    return Readable.from(rows.filter((r) => !(r.broker_id && brokers[r.broker_id])).map((r) => unpack(r.packet)));
  }

  override async destroy(): Promise<void> {
    await super.destroy();
    await this.telemetry?.close();
    this.telemetry = undefined;
    this.alarm = undefined;
    this.group?.commit();
    this.group = undefined;
    this.db?.close();
    this.db = undefined;
  }

  /* The inbound journal: QoS 1 messages acknowledged but not yet handed on. */

  async journalAppend(packet: StoredPacket): Promise<JournalRef> {
    const lane = this.laneOf(packet.topic);
    return { lane, id: await this.queueOf(packet.topic).journalAppend(packet) };
  }

  async journalRemove(ref: JournalRef): Promise<void> {
    await (ref.lane === 'telemetry' && this.telemetry ? this.telemetry : this.requireAlarm()).journalRemove(ref.id);
  }

  /** Both lanes' journals, the alarm lane's first. */
  async journalEntries(): Promise<JournalEntry[]> {
    const out: JournalEntry[] = (await this.requireAlarm().journalEntries()).map((e) => ({ ref: { lane: 'alarm', id: e.id }, packet: e.packet }));
    if (this.telemetry) out.push(...(await this.telemetry.journalEntries()).map((e): JournalEntry => ({ ref: { lane: 'telemetry', id: e.id }, packet: e.packet })));
    return out;
  }

  /** Messages queued for one client, both lanes (for health and tests). */
  async queued(clientId: string): Promise<number> {
    return (await this.requireAlarm().count(clientId)) + ((await this.telemetry?.count(clientId)) ?? 0);
  }

  private laneOf(topic: string | undefined): QueueLane {
    return this.telemetry && topic !== undefined && this.options.isTelemetry?.(topic) ? 'telemetry' : 'alarm';
  }

  private queueOf(topic: string | undefined): Queue {
    return this.laneOf(topic) === 'telemetry' ? this.telemetry! : this.requireAlarm();
  }

  private requireAlarm(): Queue {
    if (!this.alarm) throw new Error('the broker persistence is not set up');
    return this.alarm;
  }

  private prepare(db: Database.Database) {
    return {
      upsertRetained: db.prepare('INSERT OR REPLACE INTO retained (topic, packet) VALUES (?, ?)'),
      deleteRetained: db.prepare('DELETE FROM retained WHERE topic = ?'),
      upsertSub: db.prepare('INSERT OR REPLACE INTO subscription (client_id, topic, sub) VALUES (?, ?, ?)'),
      deleteSub: db.prepare('DELETE FROM subscription WHERE client_id = ? AND topic = ?'),
      deleteSubsOf: db.prepare('DELETE FROM subscription WHERE client_id = ?'),
      upsertIncoming: db.prepare('INSERT OR REPLACE INTO incoming (client_id, message_id, packet) VALUES (?, ?, ?)'),
      getIncoming: db.prepare('SELECT packet FROM incoming WHERE client_id = ? AND message_id = ?'),
      deleteIncoming: db.prepare('DELETE FROM incoming WHERE client_id = ? AND message_id = ?'),
      deleteIncomingOf: db.prepare('DELETE FROM incoming WHERE client_id = ?'),
      upsertWill: db.prepare('INSERT OR REPLACE INTO will (client_id, broker_id, packet) VALUES (?, ?, ?)'),
      getWill: db.prepare('SELECT packet FROM will WHERE client_id = ?'),
      deleteWill: db.prepare('DELETE FROM will WHERE client_id = ?'),
      allWills: db.prepare('SELECT broker_id, packet FROM will'),
    };
  }

  private write<T>(fn: () => T): Promise<T> {
    if (!this.group) throw new Error('the broker persistence is not set up');
    return this.group.write(fn);
  }
}
