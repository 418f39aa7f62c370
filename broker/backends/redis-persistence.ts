import { Readable } from 'node:stream';
import { deserialize, serialize } from 'node:v8';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';
import type { PersistedSubscription, PersistenceClient, StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type { Redis } from 'ioredis';
import type { InboundJournal } from './backend.js';

/** Where a journal entry is: the Redis hash and its field. */
export interface RedisJournalRef {
  key: string;
  field: string;
}

export interface RedisPersistenceOptions {
  /** The connection (the persistence's own: `destroy` closes it). */
  redis: Redis;
  /** Keys of this cluster start with this (several clusters may share one Redis). */
  prefix: string;
  /** How long a broker that stops refreshing its liveness key counts as alive (its journal waits that long for it). */
  livenessMs: number;
  /**
   * Queued messages handed to a persistent session when it connects
   * (aedes-persistence-redis reads only this many on CONNECT, and no more until
   * the next one): as many as a session may have queued, so a backlog after an
   * outage is delivered whole.
   */
  maxSessionDelivery: number;
}

/**
 * Moves every field of a dead broker's journal into the recovered journal of
 * the broker taking it over (and what the dead one had itself taken over and
 * not yet handed on), and deletes them, in one step: two brokers that
 * notice the same death cannot both replay its messages.
 */
const TAKE_OVER = `
local n = 0
for k = 1, 2 do
  local all = redis.call('HGETALL', KEYS[k])
  for i = 1, #all, 2 do redis.call('HSET', KEYS[3], all[i], all[i + 1]) end
  redis.call('DEL', KEYS[k])
  n = n + #all / 2
end
redis.call('SREM', KEYS[4], ARGV[1])
return n`;

/**
 * The Aedes persistence of a cluster of brokers: sessions, subscriptions,
 * retained messages, wills and QoS 1 queues in one Redis that every broker
 * shares (aedes-persistence-redis, the way Aedes itself is clustered), plus the
 * inbound journal of persist-before-ack (broker/persist-before-ack.ts).
 *
 * "On disk" is what Redis' append-only file promises: with `appendfsync
 * always` Redis answers a write after it is on the disk, so what a broker
 * acknowledged survives a crash of the broker, of Redis and of the machine;
 * with `everysec` it survives a crash of the broker or of the Redis process,
 * and up to a second of writes is lost when the machine loses power. Without
 * AOF (RDB snapshots only) everything since the last snapshot is lost:
 * docs (README, "A cluster of brokers") say not to run so.
 *
 * The journal is one hash per broker process (`<prefix>journal:<broker id>`),
 * and each broker keeps a liveness key (`<prefix>alive:<broker id>`, expiring
 * after `livenessMs`). A broker that dies (SIGKILL, machine lost) leaves its
 * journal behind; any other broker that finds its liveness key expired takes
 * it over atomically (TAKE_OVER) and publishes its messages again, so nothing
 * a dead broker acknowledged waits for it to come back.
 */
export class RedisPersistence extends AsyncRedisPersistence implements InboundJournal<RedisJournalRef> {
  private readonly redis: Redis;
  private readonly keys: { brokers: string; journal: (id: string) => string; recovered: (id: string) => string; alive: (id: string) => string };
  private id = '';
  private seq = 0;
  private beat: NodeJS.Timeout | undefined;

  constructor(private readonly o: RedisPersistenceOptions) {
    super({ conn: o.redis, maxSessionDelivery: o.maxSessionDelivery });
    this.redis = o.redis;
    const p = o.prefix;
    this.keys = {
      brokers: `${p}brokers`,
      journal: (id) => `${p}journal:${id}`,
      recovered: (id) => `${p}journal-recovered:${id}`,
      alive: (id) => `${p}alive:${id}`,
    };
  }

  /** The write of one SUBSCRIBE packet's subscriptions, by the packet's array and its client (see addSubscriptions). */
  private readonly subscribing = new WeakMap<PersistedSubscription[], { clientId: string; done: Promise<void> }>();
  /** Each client's subscription changes, one after the other (see addSubscriptions). */
  private readonly changes = new Map<string, Promise<void>>();

  /**
   * Aedes 1.2 calls this once per topic of a SUBSCRIBE, each time with all of
   * the packet's subscriptions, all at once; and the subscription broadcast of
   * aedes-persistence 11 waits for its own message to come back under one key
   * per client and first topic, so of two calls at once only the last one's
   * wait ends. A persistent session subscribing to two filters in one packet
   * (cloud-sync's alarm lane: events and status) then never got its SUBACK and
   * its events filter was never made live on its broker: every alarm for it was
   * queued in Redis and never delivered. One write per packet, and a client's
   * changes one at a time, so no two waits share a key.
   */
  override addSubscriptions(client: PersistenceClient, subs: PersistedSubscription[]): Promise<void> {
    const pending = this.subscribing.get(subs);
    if (pending?.clientId === client.id) return pending.done;
    const done = this.oneAtATime(client.id, () => super.addSubscriptions(client, subs));
    this.subscribing.set(subs, { clientId: client.id, done });
    return done;
  }

  override removeSubscriptions(client: PersistenceClient, subs: string[]): Promise<void> {
    return this.oneAtATime(client.id, () => super.removeSubscriptions(client, subs));
  }

  private oneAtATime(clientId: string, change: () => Promise<void>): Promise<void> {
    const done = (this.changes.get(clientId) ?? Promise.resolve()).then(change);
    const settled = done.catch(() => {});
    this.changes.set(clientId, settled);
    void settled.then(() => {
      if (this.changes.get(clientId) === settled) this.changes.delete(clientId);
    });
    return done;
  }

  /** Brokers that died look for each other's journals this often. */
  get recoverEveryMs(): number {
    return Math.max(100, Math.floor(this.o.livenessMs / 2));
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    this.id = (broker as { id: string }).id;
    await this.redis.multi().sadd(this.keys.brokers, this.id).set(this.keys.alive(this.id), '1', 'PX', this.o.livenessMs).exec();
    this.beat = setInterval(() => {
      this.redis.set(this.keys.alive(this.id), '1', 'PX', this.o.livenessMs).catch(() => {
        // Redis is away: the key may expire and another broker replay this one's journal; a message published twice is allowed (event ids, batch seq).
      });
    }, Math.max(50, Math.floor(this.o.livenessMs / 3)));
    this.beat.unref();
  }

  override async destroy(): Promise<void> {
    clearInterval(this.beat);
    if (this.id) {
      // A clean stop: what is left in the journal is taken over at once, not after `livenessMs`.
      await this.redis.del(this.keys.alive(this.id)).catch(() => {});
    }
    await super.destroy();
  }

  /*
   * Streams, as Aedes 1.2 reads them (it pipes the retained messages of a
   * SUBSCRIBE) and the abstract suite checks: aedes-persistence-redis 12
   * returns async generators.
   */
  override outgoingStream(client: { id: string }): Readable {
    return Readable.from(super.outgoingStream(client));
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(super.createRetainedStreamCombi(patterns));
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  override streamWill(brokers?: Record<string, unknown>): Readable {
    return Readable.from(super.streamWill(brokers));
  }

  override getClientList(topic: string): Readable {
    return Readable.from(super.getClientList(topic));
  }

  async journalAppend(packet: StoredPacket): Promise<RedisJournalRef> {
    const ref = { key: this.keys.journal(this.id), field: `${this.id}:${++this.seq}` };
    const { cmd, topic, payload, qos, retain, properties } = packet as StoredPacket & { properties?: unknown };
    await this.redis.hset(ref.key, ref.field, serialize({ cmd, topic, payload, qos, retain, ...(properties ? { properties } : {}) }));
    return ref;
  }

  async journalRemove(ref: RedisJournalRef): Promise<void> {
    await this.redis.hdel(ref.key, ref.field);
  }

  /**
   * What to publish again: the journals of brokers that died (taken over now)
   * and what this broker took over before and has not handed on yet. Never
   * this broker's own live journal: its entries are on their way.
   */
  async journalEntries(): Promise<{ ref: RedisJournalRef; packet: StoredPacket }[]> {
    const recovered = this.keys.recovered(this.id);
    for (const other of await this.redis.smembers(this.keys.brokers)) {
      if (other === this.id || (await this.redis.exists(this.keys.alive(other)))) continue;
      await this.redis.eval(TAKE_OVER, 4, this.keys.journal(other), this.keys.recovered(other), recovered, this.keys.brokers, other);
    }
    const all = await this.redis.hgetallBuffer(recovered);
    return Object.entries(all)
      .sort(([a], [b]) => compareFields(a, b))
      .map(([field, value]) => ({ ref: { key: recovered, field }, packet: deserialize(value) as StoredPacket }));
  }
}

/** Oldest first within a broker (`<broker id>:<seq>`), so replayed messages keep their order. */
function compareFields(a: string, b: string): number {
  const [ia, sa] = splitField(a);
  const [ib, sb] = splitField(b);
  return ia === ib ? sa - sb : ia < ib ? -1 : 1;
}

function splitField(f: string): [string, number] {
  const i = f.lastIndexOf(':');
  return [f.slice(0, i), Number(f.slice(i + 1))];
}
