import { connect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/index.js';
import type { ConfigInput } from '../../core/config.js';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { waitUntil } from '../helpers/processes.js';
import { connectPacket, packet, sendRaw } from '../helpers/raw-mqtt.js';

/**
 * Each limit, hit by one client while another keeps being served: the limit
 * is counted and logged, and nobody else notices.
 */
let t: TestBroker | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function brokerWith(limits: NonNullable<NonNullable<ConfigInput['broker']>['limits']>) {
  t = await startTestBroker({ limits });
  const [a, b] = await Promise.all([
    t.credential({ role: 'device', id: 's1.a', site: 's1', device: 'a' }),
    t.credential({ role: 'device', id: 's1.b', site: 's1', device: 'b' }),
  ]);
  return { t, a, b };
}

const limitHits = (b: TestBroker, limit: string) => b.metrics.get('cosafe_broker_limit_hits_total', { limit });
const logged = (b: TestBroker, limit: string) => b.logs().some((l) => l.code === 'COSAFE_ERR_BROKER_LIMIT' && l.limit === limit);

describe('broker limits', () => {
  it('connections per identity: one more is refused with "server unavailable", others are not', async () => {
    const { t, a, b } = await brokerWith({ maxConnectionsPerIdentity: 2 });
    await t.connect({ ...a, clientId: 'a-1' });
    await t.connect({ ...a, clientId: 'a-2' });
    expect((await connectError(t.broker.url, { ...a, clientId: 'a-3' })).code).toBe(3);
    await t.connect({ ...b, clientId: 'b-1' });
    // Reconnecting with a client id already in use takes that session over; it is not one more [MQTT-3.1.4-2].
    await t.connect({ ...a, clientId: 'a-2' });
    expect(limitHits(t, 'connections-per-identity')).toBe(1);
    expect(logged(t, 'connections-per-identity')).toBe(true);
  });

  it('connections of a service identity (cloud-sync workers open two per partition) have a limit of their own', async () => {
    const { t, a } = await brokerWith({ maxConnectionsPerIdentity: 1, maxConnectionsPerService: 3 });
    const service = await t.credential({ role: 'service', id: 'cloud-sync' });
    for (const n of [1, 2, 3]) await t.connect({ ...service, clientId: `svc-${n}` });
    expect((await connectError(t.broker.url, { ...service, clientId: 'svc-4' })).code).toBe(3);
    // Everyone else keeps maxConnectionsPerIdentity.
    await t.connect({ ...a, clientId: 'a-1' });
    expect((await connectError(t.broker.url, { ...a, clientId: 'a-2' })).code).toBe(3);
  });

  it('connections in total: the next socket is closed at once, and a freed slot is usable again', async () => {
    const { t, a, b } = await brokerWith({ maxConnections: 2 });
    const first = await t.connect({ ...a, clientId: 'a-1' });
    await t.connect({ ...b, clientId: 'b-1' });
    await expect(connectError(t.broker.url, { ...a, clientId: 'a-2' })).resolves.toBeInstanceOf(Error);
    expect(limitHits(t, 'connections')).toBe(1);
    await first.endAsync();
    await waitUntil('the slot to be free', () => t.metrics.get('cosafe_broker_connections', { listener: 'tcp' }) === 1);
    await t.connect({ ...a, clientId: 'a-3' });
  });

  it('failed logins per address and identity: ten wrong passwords for one identity do not refuse the others behind the same address', async () => {
    const { t, a, b } = await brokerWith({ authFailuresPerMinute: 3 });
    const connected = await t.connect({ ...a, clientId: 'a-1' });
    const port = String(t.broker.port);
    for (let i = 0; i < 3; i++) {
      const r = await mosquittoPub(['-p', port, '-u', b.username, '-P', `guess-${i}`, '-t', 'x', '-m', 'x']);
      expect(r.stderr).toContain('bad user name or password');
    }
    // Now even the right secret of that identity is refused from this address ...
    const right = await mosquittoPub(['-p', port, ...login(b), '-t', topics.deviceUplink('s1', 'b'), '-m', 'x'], 5000);
    expect(right.code).not.toBe(0);
    expect(limitHits(t, 'auth-failures')).toBe(1);
    const hit = t.logs().find((l) => l.code === 'COSAFE_ERR_BROKER_LIMIT' && l.limit === 'auth-failures');
    expect(hit).toMatchObject({ identity: 's1.b', address: '127.0.0.1', failures: 3, perMinute: 3 });
    expect(String(hit?.why)).toContain('other identities from the same address are still served');
    // ... while another device behind the same address (a shared NAT) still logs in, and a connected one keeps working.
    const other = await mosquittoPub(['-p', port, ...login(a), '-i', 'a-2', '-q', '1', '-t', topics.deviceUplink('s1', 'a'), '-m', 'x'], 5000);
    expect(other.code, other.stderr).toBe(0);
    await connected.publishAsync(topics.deviceUplink('s1', 'a'), 'still here', { qos: 1 });
    expect(connected.connected).toBe(true);
  });

  it('failed logins for many identities from one address (spraying): the address is refused, a connected client keeps working', async () => {
    const { t, a } = await brokerWith({ authFailedIdentitiesPerMinute: 3 });
    const connected = await t.connect({ ...a, clientId: 'a-1' });
    const port = String(t.broker.port);
    for (const user of ['s1.x', 's1.y', 's1.z']) {
      const r = await mosquittoPub(['-p', port, '-u', user, '-P', 'guess', '-t', 'x', '-m', 'x']);
      expect(r.stderr).toContain('bad user name or password');
    }
    // Now even a right secret gets no answer from this address.
    const right = await mosquittoPub(['-p', port, ...login(a), '-i', 'a-2', '-t', topics.deviceUplink('s1', 'a'), '-m', 'x'], 5000);
    expect(right.code).not.toBe(0);
    expect(right.stderr).not.toContain('bad user name or password');
    expect(limitHits(t, 'auth-failed-identities')).toBe(1);
    expect(logged(t, 'auth-failed-identities')).toBe(true);
    await connected.publishAsync(topics.deviceUplink('s1', 'a'), 'still here', { qos: 1 });
    expect(connected.connected).toBe(true);
  });

  it('connection attempts per address', async () => {
    const { t, a } = await brokerWith({ connectAttemptsPerMinute: 3 });
    for (let i = 0; i < 3; i++) await (await t.connect({ ...a, clientId: `a-${i}` })).endAsync();
    // The client is told: CONNACK 3, server unavailable (not a bare ECONNRESET), and the log says which limit.
    expect((await connectError(t.broker.url, { ...a, clientId: 'a-4' })).code).toBe(3);
    expect(limitHits(t, 'connect-attempts')).toBe(1);
    expect(logged(t, 'connect-attempts')).toBe(true);
  });

  it('a fleet behind one address connects with the default limits, and again after every connection dropped', async () => {
    t = await startTestBroker();
    // More than the old default of 300 attempts per address a minute, twice over.
    const issued = await t.store.addMany(Array.from({ length: 320 }, (_, i) => ({ role: 'device' as const, id: `s1.th-${i}`, site: 's1', device: `th-${i}` })));
    const fleet = issued.map(({ credential, secret }) => ({ username: credential.identity.id, password: secret }));
    for (let round = 0; round < 2; round++) {
      // The first round's logins each hash their secret (the hub has not seen them yet); the second's are remembered.
      const clients = await Promise.all(fleet.map((login, i) => t!.connect({ ...login, clientId: `th-${i}`, connectTimeout: 120_000 })));
      expect(clients.filter((c) => c.connected)).toHaveLength(fleet.length);
      await Promise.all(clients.map((c) => c.endAsync(true)));
    }
    expect(limitHits(t, 'connect-attempts')).toBe(0);
  });

  it('publish rate: publishes over the rate are held back, not lost, and another client overtakes them', async () => {
    const { t, a, b } = await brokerWith({ publishesPerSecond: 10, publishBurst: 5 });
    const gateway = await t.credential({ role: 'gateway', id: 's1.gw', site: 's1', gateway: 'gw' });
    const sub = await t.connect({ ...gateway, clientId: 'gw' });
    const got: string[] = [];
    sub.on('message', (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync(subscriptions.siteUplinks('s1'), { qos: 1 });
    const fast = await t.connect({ ...a, clientId: 'a-1' });
    const other = await t.connect({ ...b, clientId: 'b-1' });
    // 25 at once: 5 go through (the burst), 20 are held back at 10/s, two seconds' worth.
    const all = Promise.all([...Array(25).keys()].map((i) => fast.publishAsync(topics.deviceUplink('s1', 'a'), String(i), { qos: 1 })));
    await waitUntil('the fast client held back', () => limitHits(t, 'publish-rate') > 0);
    // Meanwhile another client is not queued behind it: its message is delivered before the held ones.
    await other.publishAsync(topics.deviceUplink('s1', 'b'), 'b', { qos: 1 });
    await all;
    await waitUntil('every message', () => got.length === 26);
    expect(got.indexOf('b')).toBeLessThan(got.indexOf('24'));
    expect(got.filter((m) => m !== 'b')).toEqual([...Array(25).keys()].map(String));
    expect(fast.connected).toBe(true);
  });

  it("uplink window: a device sending thousands at once is held back, loses nothing, and a quiet device's publish goes through meanwhile", async () => {
    const { t, a, b } = await brokerWith({ uplinkWindow: 10, publishesPerSecond: 100_000, publishBurst: 100_000 });
    const gateway = await t.credential({ role: 'gateway', id: 's1.gw', site: 's1', gateway: 'gw' });
    const sub = await t.connect({ ...gateway, clientId: 'gw', clean: false });
    const got: string[] = [];
    sub.on('message', (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync(subscriptions.siteUplinks('s1'), { qos: 1 });
    const fast = await t.connect({ ...a, clientId: 'a-1' });
    const quiet = await t.connect({ ...b, clientId: 'b-1' });
    const heldTotal = () => t.metrics.get('cosafe_broker_uplink_held_total', {});
    // Ten at a time, each ten committed to disk before the next: thousands take many turns to go through.
    const n = 5_000;
    const all = Promise.all([...Array(n).keys()].map((i) => fast.publishAsync(topics.deviceUplink('s1', 'a'), String(i), { qos: 1 })));
    await waitUntil('the fast device held back', () => heldTotal() > 0, 10_000, 1);
    // A device with nothing in flight is not queued behind it.
    await quiet.publishAsync(topics.deviceUplink('s1', 'b'), 'b', { qos: 1 });
    await all;
    await waitUntil('every message', () => got.length === n + 1, 30_000);
    expect(got.indexOf('b')).toBeLessThan(got.indexOf(String(n - 1)));
    expect(got.filter((m) => m !== 'b')).toEqual([...Array(n).keys()].map(String));
    expect(heldTotal()).toBeGreaterThan(n / 2);
    expect(t.metrics.get('cosafe_broker_uplink_held', {})).toBe(0);
    expect(t.metrics.get('cosafe_broker_uplink_inflight', {})).toBe(0);
    expect(fast.connected).toBe(true);
  }, 60_000);

  it('uplink window: a device that goes while held gives its room back, and the others are served', async () => {
    const { t, a, b } = await brokerWith({ uplinkWindow: 10, publishesPerSecond: 100_000, publishBurst: 100_000 });
    // A gateway's persistent session: each publish is queued on disk for it before it is done.
    const gateway = await t.credential({ role: 'gateway', id: 's1.gw', site: 's1', gateway: 'gw' });
    await (await t.connect({ ...gateway, clientId: 'gw', clean: false })).subscribeAsync(subscriptions.siteUplinks('s1'), { qos: 1 });
    const fast = await t.connect({ ...a, clientId: 'a-1' });
    const other = await t.connect({ ...b, clientId: 'b-1' });
    const held = () => t.metrics.get('cosafe_broker_uplink_held', {}) ?? 0;
    for (let i = 0; i < 5_000; i++) fast.publish(topics.deviceUplink('s1', 'a'), String(i), { qos: 1 });
    await waitUntil('the fast device held back', () => held() > 0, 10_000, 1);
    // Gone with publishes held: they were never acknowledged (the device sends them again), and take no room.
    fast.end(true);
    await waitUntil('its room given back', () => held() === 0 && t.metrics.get('cosafe_broker_uplink_inflight', {}) === 0);
    // Not only a device with nothing in flight: the next ones of the other device too.
    await Promise.all([...Array(50).keys()].map((i) => other.publishAsync(topics.deviceUplink('s1', 'b'), String(i), { qos: 1 })));
  }, 60_000);

  it('held publishes and packets before CONNACK: a client that piles them up is disconnected', async () => {
    const { t, a } = await brokerWith({ publishesPerSecond: 1, publishBurst: 1, maxHeldPublishes: 5, queueLimit: 30 });
    const publish = packet({ cmd: 'publish', topic: topics.deviceUplink('s1', 'a'), payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
    // One read: CONNECT and 20 publishes, more than 1 allowed now plus 5 held.
    expect(await sendRaw(t.broker.port, Buffer.concat([connectPacket('a-pile', a), ...Array(20).fill(publish)]), 20_000)).toBe('closed');
    expect(limitHits(t, 'held-publishes')).toBe(1);
    // More packets before the CONNACK than Aedes' queueLimit.
    expect(await sendRaw(t.broker.port, Buffer.concat([connectPacket('a-queue', a), ...Array(40).fill(publish)]), 20_000)).toBe('closed');
    expect(limitHits(t, 'queue')).toBe(1);
    const polite = await t.connect({ ...a, clientId: 'a-polite' });
    await polite.publishAsync(topics.deviceUplink('s1', 'a'), 'fine', { qos: 1 });
  });

  it('in-flight messages: QoS 2 publishes whose PUBREL never comes are capped', async () => {
    const { t, a } = await brokerWith({ maxInflightInbound: 3 });
    const qos2 = (messageId: number) => packet({ cmd: 'publish', topic: topics.deviceUplink('s1', 'a'), payload: Buffer.from('x'), qos: 2, messageId, dup: false, retain: false });
    expect(await sendRaw(t.broker.port, Buffer.concat([connectPacket('a-half-open', a), qos2(1), qos2(2), qos2(3), qos2(4)]), 20_000)).toBe('closed');
    await waitUntil('the in-flight limit to be counted', () => limitHits(t, 'inflight') === 1);
    const polite = await t.connect({ ...a, clientId: 'a-polite' });
    await polite.publishAsync(topics.deviceUplink('s1', 'a'), 'fine', { qos: 2 });
  });
});

describe("the broker's own memory", () => {
  it("writes packet ids without mqtt-packet's table of 65,536 Buffers, whichever client or broker writes first", async () => {
    // As in a fresh process, where the first write builds the table (7 MiB kept for the life of the hub) unless it is turned off.
    mqttPacket.writeToStream.cacheNumbers = true;
    t = await startTestBroker();
    expect(mqttPacket.writeToStream.cacheNumbers).toBe(false);
  });
});

describe('stopping the broker', () => {
  it('ends every connection at once: logged in, WebSocket, and ones that never sent CONNECT', async () => {
    // A connection that never sends CONNECT would otherwise wait ten minutes: only an active close ends it within the test.
    t = await startTestBroker({ listeners: { ws: { enabled: true, port: 0 } }, limits: { connectTimeoutMs: 600_000 } });
    const a = await t.credential({ role: 'device', id: 's1.a', site: 's1', device: 'a' });
    const client = await t.connect({ ...a, clientId: 'a-1' });
    await t.connect({ clientId: 'resident' }, t.broker.listeners.ws!.url);
    const silent = connect(t.broker.port, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise((r) => silent.once('connect', r));
    const silentClosed = new Promise((r) => silent.once('close', r));
    await t.broker.close();
    await silentClosed;
    expect(client.connected).toBe(false);
  });
});
