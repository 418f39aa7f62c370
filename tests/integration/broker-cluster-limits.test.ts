import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../broker/contract/topics.js';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { waitUntil } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * The login limits and revocations hold for the whole hub, whichever broker a
 * client reaches. The same behaviour runs twice: on one broker alone (the
 * embedded backend: "both" brokers are that one), and on two brokers sharing a
 * real redis-server (broker.cluster), where a client's failures, connections
 * and revocation made on broker A are met on broker B.
 */
const limits = { authFailuresPerMinute: 3, authFailedIdentitiesPerMinute: 5, maxConnectionsPerIdentity: 2 };

interface Pair {
  a: TestBroker;
  b: TestBroker;
  redis?: RedisServer;
}

async function embedded(): Promise<Pair> {
  const t = await startTestBroker({ limits, revocationCheckMs: 200 });
  return { a: t, b: t };
}

async function cluster(): Promise<Pair> {
  const redis = await startRedis({ appendfsync: 'always' });
  const c = { redisUrl: redis.url, heartbeatMs: 500, livenessMs: 1500 };
  const a = await startTestBroker({ limits, revocationCheckMs: 200, cluster: { ...c, brokerId: 'limits-a' } });
  const b = await startTestBroker({ limits, revocationCheckMs: 200, cluster: { ...c, brokerId: 'limits-b' } });
  return { a, b, redis };
}

const limitHits = (t: TestBroker, limit: string) => t.metrics.get('cosafe_broker_limit_hits_total', { limit }) ?? 0;

describe.each([
  ['one broker alone (embedded)', embedded],
  ['two brokers on one Redis', cluster],
])('login limits and revocations: %s', (_name, start) => {
  let p: Pair;
  beforeAll(async () => {
    p = await start();
  }, 120_000);
  afterAll(async () => {
    await p?.a.close();
    if (p?.b !== p?.a) await p?.b.close();
    await p?.redis?.stop();
  });

  /** Issued on broker A, as `cosafe credentials add` would; in a cluster it reaches B through Redis. */
  async function issue(id: string, device: string) {
    const login = await p.a.credential({ role: 'device', id, site: 's1', device });
    await waitUntil(`credential ${id} on broker B`, () => p.b.store.find(id) !== undefined, 30_000);
    return login;
  }

  it('counts failed logins for one identity over every broker: refused on both once the limit is reached', async () => {
    const victim = await issue('s1.victim', 'victim');
    const bystander = await issue('s1.bystander', 'bystander');
    for (const [t, i] of [[p.a, 0], [p.b, 1], [p.a, 2]] as const) {
      expect((await connectError(t.broker.url, { username: victim.username, password: `guess-${i}`, clientId: `guess-${i}` })).code).toBe(4);
      // In a cluster the failure is counted in Redis after the refusal is sent: wait until it is, so the next one meets it.
      if (p.redis) await waitUntil('the failure counted in Redis', async () => Number(await p.redis!.client.hget('cosafe:auth-failed:127.0.0.1', victim.username)) === i + 1, 30_000);
    }
    // Three failures, on two brokers: the right secret is refused now on either (not authorized, before any hashing) ...
    for (const t of [p.a, p.b]) expect((await connectError(t.broker.url, { ...victim, clientId: 'victim-right' })).code).toBe(5);
    expect(limitHits(p.a, 'auth-failures') + (p.b === p.a ? 0 : limitHits(p.b, 'auth-failures'))).toBe(2);
    // ... while another identity from the same address still logs in, on both.
    for (const t of [p.a, p.b]) await (await t.connect({ ...bystander, clientId: `bystander-${t === p.a ? 'a' : 'b'}` })).endAsync();
  });

  it("counts an identity's connections over every broker, and frees one when it ends", async () => {
    const dev = await issue('s1.counted', 'counted');
    const first = await p.a.connect({ ...dev, clientId: 'cnt-1' });
    await p.b.connect({ ...dev, clientId: 'cnt-2' });
    // Two connections, one on each broker: a third is refused on either ("server unavailable").
    for (const t of [p.a, p.b]) expect((await connectError(t.broker.url, { ...dev, clientId: 'cnt-3' })).code).toBe(3);
    expect(limitHits(p.a, 'connections-per-identity') + (p.b === p.a ? 0 : limitHits(p.b, 'connections-per-identity'))).toBe(2);
    // The same client id again takes its session over [MQTT-3.1.4-2], from whichever broker it was on: not one more.
    await p.a.connect({ ...dev, clientId: 'cnt-2' });
    // One ends: its connection is free again, on the other broker too.
    await first.endAsync();
    await waitUntil('a third client of the identity admitted on broker B', () => p.b.connect({ ...dev, clientId: 'cnt-3' }).then(() => true, () => false), 30_000, 200);
  });

  it("ends a revoked identity's sessions on every broker and refuses it on every broker", async () => {
    const dev = await issue('s1.revoked', 'revoked');
    const onA = await p.a.connect({ ...dev, clientId: 'rev-a' });
    const onB = await p.b.connect({ ...dev, clientId: 'rev-b' });
    const closed = (c: typeof onA) => new Promise<void>((resolve) => c.once('close', () => resolve()));
    const ended = Promise.all([closed(onA), closed(onB)]);
    // Revoked in broker A's file by another connection, as `cosafe credentials revoke --data-dir <A's>` does.
    p.a.store.revoke(dev.username);
    // Neither client does anything: the brokers end the sessions (B on A's word, through Redis).
    await ended;
    const ends = (t: TestBroker) => t.metrics.get('cosafe_broker_sessions_ended_total', { reason: 'revoked' }) ?? 0;
    expect(p.b === p.a ? ends(p.a) : ends(p.a) + ends(p.b)).toBe(2);
    for (const t of [p.a, p.b]) expect((await connectError(t.broker.url, { ...dev, clientId: 'rev-again' })).code).toBe(4);
    expect(p.b.store.find(dev.username)?.revokedAt).not.toBeNull();
  });

  // Last: it refuses the tests' own address (127.0.0.1) for the rest of the minute.
  it('refuses an address that failed logins for too many identities, whichever broker it tried them on', async () => {
    const right = await issue('s1.sprayed', 'sprayed');
    const connected = await p.b.connect({ ...right, clientId: 'sprayed-1' });
    // With s1.victim and s1.revoked of the tests before, five identities failed from this address.
    for (const [t, user] of [[p.a, 's1.x'], [p.b, 's1.y'], [p.a, 's1.z']] as const) {
      expect((await connectError(t.broker.url, { username: user, password: 'guess', clientId: `spray-${user}` })).code).toBe(4);
      if (p.redis) await waitUntil('the failure counted in Redis', async () => (await p.redis!.client.hexists('cosafe:auth-failed:127.0.0.1', user)) === 1, 30_000);
    }
    // Spread over the brokers: a right secret is refused on B too (one broker alone closes the connection unanswered,
    // a cluster's broker that saw fewer of them answers "not authorized").
    const refused = await connectError(p.b.broker.url, { ...right, clientId: 'sprayed-2' });
    expect(refused.code).not.toBe(4);
    expect(limitHits(p.b, 'auth-failed-identities')).toBe(1);
    // A client connected before keeps working.
    await connected.publishAsync(topics.deviceUplink('s1', 'sprayed'), 'still here', { qos: 1 });
    expect(connected.connected).toBe(true);
  });
});

describe('a cluster while its Redis is down', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await cluster();
  }, 120_000);
  afterAll(async () => {
    await p?.a.close();
    await p?.b.close();
    await p?.redis?.stop();
  });

  // Vitest fails the run on an unhandled error or rejection: so this also proves that the brokers live through it
  // (Aedes' sweep of dead brokers' wills and mqemitter-redis' connection errors had no listener, and threw).
  it('keeps its brokers, refuses wrong secrets on local counts, and admits logins again once Redis is back', async () => {
    const dev = await p.a.credential({ role: 'device', id: 's1.outage', site: 's1', device: 'outage' });
    const other = await p.a.credential({ role: 'device', id: 's1.after', site: 's1', device: 'after' });
    await waitUntil('the credentials on broker B', () => p.b.store.find('s1.outage') !== undefined && p.b.store.find('s1.after') !== undefined, 30_000);
    // As a device would: mqtt.js reconnecting. A persistence call of its session still in flight when Redis dies
    // fails ~10 s later (ioredis gives up), and Aedes closes that connection; the client must then come back.
    const before = await p.b.connect({ ...dev, clientId: 'outage-before', reconnectPeriod: 500 });
    await p.redis!.kill();
    try {
      // The failure limit stays in force on each broker's own counts (a wrong secret is refused before any session is made).
      for (let i = 0; i < limits.authFailuresPerMinute; i++) {
        expect((await connectError(p.a.broker.url, { username: dev.username, password: `guess-${i}`, clientId: `outage-guess-${i}` })).code).toBe(4);
      }
      expect((await connectError(p.a.broker.url, { ...dev, clientId: 'outage-right' })).code).toBe(5);
      // Aedes' sweep of dead brokers' wills fails meanwhile: counted, and the broker goes on.
      await waitUntil("the brokers' failed sweep of wills counted", () => [p.a, p.b].every((t) => (t.metrics.get('cosafe_broker_internal_errors_total', {}) ?? 0) >= 1), 90_000, 200);
    } finally {
      await p.redis!.restart();
    }
    // Sessions live in Redis: with it back, logins are admitted again on both brokers, and the earlier client's
    // QoS 1 is acknowledged (mqtt.js reconnects it if the outage cost it its connection).
    for (const t of [p.a, p.b]) {
      await waitUntil(`a login on broker ${t === p.a ? 'A' : 'B'} with Redis back`, () => t.connect({ ...other, clientId: `after-${t === p.a ? 'a' : 'b'}` }).then((c) => c.endAsync().then(() => true), () => false), 60_000, 500);
    }
    await before.publishAsync(topics.deviceUplink('s1', 'outage'), 'after the outage', { qos: 1 });
  }, 180_000); // the waits above: ioredis gives up a command after ~10.5 s of retries, then Redis restarts
});
