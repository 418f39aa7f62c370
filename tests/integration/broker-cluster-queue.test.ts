import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/topics.js';
import { received, startTestCluster, type TestBroker, type TestCluster } from '../helpers/broker.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * A persistent session's backlog on a cluster of brokers (one real
 * redis-server, two brokers): when its client comes back, on either broker,
 * it gets all of it, not the first few dozen messages. This is what a
 * cloud-sync worker taking over a dead worker's partition relies on
 * (README, "Cloud-sync workers"). Brokers of their own, apart from
 * broker-cluster.test.ts, so that a backlog of hundreds does not share the
 * brokers and identities of the tests there.
 */
let cluster: TestCluster;
let a: TestBroker;
let b: TestBroker;
beforeAll(async () => {
  cluster = await startTestCluster(['queue-a', 'queue-b']);
  ({ a, b } = cluster);
});
afterAll(async () => {
  await cluster?.close();
});


describe('a persistent session on a cluster of brokers', () => {
  it('hands a persistent session its whole queue when it comes back, however long (a cloud-sync worker taking over a partition)', async () => {
    const events = topics.events('bakery-12', 'gw-1');
    const sync = await b.connect({ ...(await b.credential({ role: 'service', id: 'queue-sync-b' })), clientId: 'cluster-long-queue', clean: false });
    await sync.subscribeAsync(subscriptions.allEvents, { qos: 1 });
    await sync.endAsync();
    // Far more than the 43 (queueLimit + 1) an earlier version handed over per CONNECT, leaving the rest in Redis.
    const gw = await a.connect({ ...(await a.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' })), clientId: 'cluster-gw-long-queue' });
    const n = 300;
    for (let i = 0; i < n; i++) await gw.publishAsync(events, JSON.stringify({ q: i }), { qos: 1 });
    const back = await a.connect({ ...(await a.credential({ role: 'service', id: 'queue-sync-a' })), clientId: 'cluster-long-queue', clean: false });
    const got = received(back);
    await waitUntil(`all ${n} queued messages`, () => new Set(got).size >= n, 60_000);
    expect([...new Set(got)].map((p) => (JSON.parse(p) as { q: number }).q).sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    await Promise.all([back.endAsync(), gw.endAsync()]);
  }, 120_000);

});
