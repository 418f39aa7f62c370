import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/topics.js';
import { received, startTestCluster, type TestBroker, type TestCluster } from '../helpers/broker.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * Two hub brokers sharing one real redis-server (broker.cluster): a client on
 * either reaches subscribers on the other, and a persistent session's queue
 * lives in Redis, so it follows its client to whichever broker it connects to.
 */
let cluster: TestCluster;
let a: TestBroker;
let b: TestBroker;
beforeAll(async () => {
  cluster = await startTestCluster(['broker-a', 'broker-b']);
  ({ a, b } = cluster);
});
afterAll(async () => {
  await cluster?.close();
});

/** One login per broker and identity (each test broker has a credential store of its own). */
const logins = new Map<string, Promise<{ username: string; password: string }>>();
const once = (t: TestBroker, key: string, make: () => Promise<{ username: string; password: string }>) => {
  const k = `${t.dataDir}:${key}`;
  if (!logins.has(k)) logins.set(k, make());
  return logins.get(k)!;
};
const gatewayOf = (t: TestBroker) => once(t, 'gw', () => t.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' }));
// One service identity per broker: the same id issued on two brokers is a conflict the cluster settles for one
// of the two secrets (README, "What the brokers share"), and the other login fails once it has.
const serviceOf = (t: TestBroker) => once(t, 'service', () => t.credential({ role: 'service', id: t === a ? 'cloud-sync-a' : 'cloud-sync-b' }));


describe('a cluster of brokers on one Redis', () => {
  it('routes a QoS 1 alarm published on broker A to a subscriber on broker B, and queues it in Redis while that subscriber is away', async () => {
    const events = topics.events('bakery-12', 'gw-1');
    const loginB = await serviceOf(b);
    const sync = await b.connect({ ...loginB, clientId: 'cluster-sync', clean: false });
    await sync.subscribeAsync(subscriptions.allEvents, { qos: 1 });
    const got = received(sync);
    const gw = await a.connect({ ...(await gatewayOf(a)), clientId: 'cluster-gw' });
    await gw.publishAsync(events, JSON.stringify({ n: 1 }), { qos: 1 });
    await waitUntil('the alarm from broker A at the subscriber on broker B', () => got.length === 1, 20_000);
    expect(got).toEqual([JSON.stringify({ n: 1 })]);

    // The subscriber goes away; what is published meanwhile waits in its session, in Redis.
    await sync.endAsync();
    await gw.publishAsync(events, JSON.stringify({ n: 2 }), { qos: 1 });
    await gw.publishAsync(events, JSON.stringify({ n: 3 }), { qos: 1 });
    // It comes back on the other broker, A: its session and queue are there too.
    const back = await a.connect({ ...(await serviceOf(a)), clientId: 'cluster-sync', clean: false });
    const later = received(back);
    await waitUntil('the queued alarms at the subscriber, now on broker A', () => later.length >= 2, 20_000);
    expect(later).toEqual([JSON.stringify({ n: 2 }), JSON.stringify({ n: 3 })]);
  });

  it('gives a persistent session that subscribes to two filters in one SUBSCRIBE both of them, across brokers', async () => {
    // cloud-sync's alarm lane subscribes to events and status in one packet; with Redis, that SUBSCRIBE once
    // never got its SUBACK and the events filter never came alive: every alarm for it sat queued in Redis.
    const sync = await b.connect({ ...(await serviceOf(b)), clientId: 'cluster-sync-two', clean: false });
    const granted = await sync.subscribeAsync([subscriptions.allEvents, subscriptions.allStatus], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1]);
    const got = received(sync);
    const gw = await a.connect({ ...(await gatewayOf(a)), clientId: 'cluster-gw-two' });
    await gw.publishAsync(topics.events('bakery-12', 'gw-1'), JSON.stringify({ n: 'event' }), { qos: 1 });
    await gw.publishAsync(topics.status('bakery-12', 'gw-1'), JSON.stringify({ n: 'status' }), { qos: 1 });
    await waitUntil('the event and the status from broker A at the subscriber on broker B', () => got.length >= 2, 20_000);
    expect(got.sort()).toEqual([JSON.stringify({ n: 'event' }), JSON.stringify({ n: 'status' })]);
    await Promise.all([sync.endAsync(), gw.endAsync()]);
  });

  it("hands a gateway's retained status, published on broker A, to a client that subscribes on broker B", async () => {
    const status = topics.status('bakery-12', 'gw-1');
    const gw = await a.connect({ ...(await gatewayOf(a)), clientId: 'cluster-gw-status' });
    await gw.publishAsync(status, JSON.stringify({ online: true }), { qos: 1, retain: true });
    const reader = await b.connect({ ...(await serviceOf(b)), clientId: 'cluster-status-reader' });
    const got = received(reader);
    await reader.subscribeAsync(status, { qos: 1 });
    await waitUntil('the retained status on broker B', () => got.length === 1, 20_000);
    expect(got).toEqual([JSON.stringify({ online: true })]);
  });
});
