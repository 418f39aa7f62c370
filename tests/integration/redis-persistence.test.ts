import assert from 'node:assert';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPersistence } from '../../broker/backends/redis-persistence.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * The conformance suite every Aedes persistence must pass (aedes-persistence's
 * abstract.js, run for SQLite in tests/unit/broker/sqlite-persistence.test.ts),
 * here against the Redis persistence of a cluster, on a real redis-server with
 * its append-only file on (appendfsync always), and mqemitter-redis as the
 * brokers' message bus, as a cluster runs them.
 */
type AbstractTest = (name: string, fn: (t: unknown) => Promise<void>) => void;
const abstractSuite = createRequire(import.meta.url)('aedes-persistence/abstract.js') as (opts: {
  test: AbstractTest;
  persistence: () => Promise<unknown>;
  buildEmitter: () => unknown;
  testAsync: boolean;
}) => void;

let redis: RedisServer;
const opened: { close(cb: () => void): void }[] = [];
beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'always' });
});
afterAll(async () => {
  await redis?.stop();
});

const connection = () => new Redis(redis.url).on('error', () => {}); // refused while Redis restarts: ioredis retries
const persistence = (o: { livenessMs?: number } = {}) => new RedisPersistence({ redis: connection(), prefix: 'cosafe:test:', livenessMs: o.livenessMs ?? 10_000, maxSessionDelivery: 100_000 });

describe('Redis persistence: aedes-persistence abstract suite', () => {
  afterAll(async () => {
    await Promise.all(opened.splice(0).map((e) => new Promise<void>((resolve) => e.close(() => resolve()))));
  });
  abstractSuite({
    testAsync: true,
    buildEmitter: () => {
      const mq = MQEmitterRedis({ connectionString: redis.url });
      opened.push(mq);
      return mq;
    },
    persistence: async () => {
      await redis.client.flushall();
      return persistence();
    },
    test: (name, fn) =>
      it(name, async () => {
        // node:test's TestContext, as far as the suite uses it.
        await fn({ assert, plan: () => {}, diagnostic: () => {} });
      }),
  });
});

describe('Redis persistence: the inbound journal of persist-before-ack', () => {
  const broker = (id: string) => ({ id, counter: 0, mq: {}, publish() {}, subscribe: (_t: string, _f: unknown, done?: () => void) => done?.(), unsubscribe: (_t: string, _f: unknown, done?: () => void) => done?.() });
  const packet = (payload: string) => ({ cmd: 'publish', topic: 'cosafe/v1/sites/s1/gateways/g1/events', payload: Buffer.from(payload), qos: 1, retain: false });

  it("keeps what a broker acknowledged through a SIGKILL of Redis, and another broker takes a dead broker's journal over once", async () => {
    await redis.client.flushall();
    const dead = persistence({ livenessMs: 300 });
    await dead.setup(broker('broker-a'));
    const kept = [await dead.journalAppend(packet('fire-1')), await dead.journalAppend(packet('fire-2')), await dead.journalAppend(packet('fire-3'))];
    await dead.journalRemove(kept[1]!);
    // Redis itself dies (SIGKILL) and comes back from its append-only file.
    await redis.kill();
    await redis.restart();
    const b = persistence({ livenessMs: 300 });
    const c = persistence({ livenessMs: 300 });
    await b.setup(broker('broker-b'));
    await c.setup(broker('broker-c'));
    // broker-a is not alive: its heartbeat (and its Redis connection) went with the old Redis; stop it as a SIGKILL would.
    (dead as unknown as { beat: NodeJS.Timeout }).beat.close();
    // A heartbeat queued on its connection while Redis was down would set the key again after the delete:
    // a PING on the same connection comes back only after whatever was queued before it.
    await (dead as unknown as { redis: Redis }).redis.ping();
    await redis.client.del('cosafe:test:alive:broker-a');
    // Two brokers look at once: one of them gets the journal, never both.
    const [fromB, fromC] = await Promise.all([b.journalEntries(), c.journalEntries()]);
    const taken = [...fromB, ...fromC].map((e) => Buffer.from(e.packet.payload as Buffer).toString());
    expect(taken).toEqual(['fire-1', 'fire-3']);
    const owner = fromB.length ? b : c;
    for (const e of [...fromB, ...fromC]) await owner.journalRemove(e.ref);
    expect(await owner.journalEntries()).toEqual([]);
    // A live broker's own journal is never replayed by another.
    await b.journalAppend(packet('fire-4'));
    expect(await c.journalEntries()).toEqual([]);
    await Promise.all([b.destroy(), c.destroy()]);
    (dead as unknown as { redis: Redis }).redis.disconnect();
  });
});
