import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/index.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * A persistent session that comes back gets what was queued for it and what is
 * published meanwhile in the order it was published. Cloud-sync's alarm lane
 * depends on it: a smoke detector's "active" that overtakes the "cleared"
 * queued before it leaves the alarm as cleared while the detector is in alarm.
 * Aedes subscribes a returning session again before it sends the queue, so a
 * message published in between went out at once, ahead of the older ones.
 */
let broker: TestBroker;
afterAll(async () => broker?.close());

const QUEUED = 2000;
const LIVE = 300;

describe('a persistent session coming back', () => {
  it('gets its queued messages and those published meanwhile in the order they were published', async () => {
    // A gateway's backlog after an outage comes faster than the per-client publish rate the broker allows by default.
    broker = await startTestBroker({ limits: { publishesPerSecond: 100_000, publishBurst: 100_000 } });
    const service = await broker.credential({ role: 'service', id: 'cloud-sync' });
    const gateway = await broker.connect({ clientId: 'gw', ...(await broker.credential({ role: 'gateway', id: 'site-o.gw-1', site: 'site-o', gateway: 'gw-1' })) });
    const first = await broker.connect({ clientId: 'order-session', clean: false, ...service });
    await first.subscribeAsync(subscriptions.allEvents, { qos: 1 });
    await first.endAsync();

    const topic = topics.events('site-o', 'gw-1');
    await Promise.all(Array.from({ length: QUEUED }, (_, n) => gateway.publishAsync(topic, String(n), { qos: 1 })));

    const firstSeen: number[] = [];
    const seen = new Set<number>();
    let duplicates = 0;
    // Listening before the connection is up: the queue may come in the same read as the CONNACK.
    const sub = mqtt.connect(broker.broker.url, { clientId: 'order-session', clean: false, reconnectPeriod: 0, ...service });
    sub.on('message', (_t, payload) => {
      const n = Number(payload.toString());
      // QoS 1: a message may come twice; its first arrival is what counts.
      if (!seen.has(n)) firstSeen.push(n);
      else duplicates++;
      seen.add(n);
    });
    // Published while the session comes back and its queue goes out.
    await new Promise((resolve) => sub.once('connect', resolve));
    const live = (async () => {
      for (let n = QUEUED; n < QUEUED + LIVE; n++) await gateway.publishAsync(topic, String(n), { qos: 1 });
    })();
    await live;
    await waitUntil('every message', () => seen.size === QUEUED + LIVE, 60_000, 50);
    const overtaken = firstSeen.filter((n, i) => i > 0 && n < firstSeen[i - 1]!);
    expect(overtaken, `messages that arrived after a newer one (first: ${firstSeen.slice(0, 5).join(', ')} ...)`).toEqual([]);
    // Nor is a message the queue sent sent again because it was also held as live.
    expect(duplicates).toBe(0);
    await sub.endAsync();
    await gateway.endAsync();
  });
});
