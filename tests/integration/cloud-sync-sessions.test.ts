import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { subscriptions, topics, type AlarmEvent, type ReadingBatch } from '../../broker/contract/index.js';
import { AddressGuard } from '../../broker/limits/address-guard.js';
import { credentialVerifier } from '../../cli/compose.js';
import { startCloudSync, type CloudSync } from '../../cloud-sync/cloud-sync.js';
import { systemClock } from '../../core/clock.js';
import { buildConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { waitUntil } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * Cloud-sync's two persistent sessions on a broker that already has sessions
 * of an earlier version: the subscriptions are made on every connect, not only
 * when a session is new, and the old all-in-one session gives up the alarm topics.
 */
const secret = `whsec_${randomBytes(24).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-sessions-'));
let broker: TestBroker;
let fd: FireDepartmentReceiver;
let cloudSync: CloudSync | undefined;
const ends: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const end of ends) await end().catch(() => {});
  await cloudSync?.stop();
  await broker?.close();
  await fd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const event = (n: number): AlarmEvent => ({
  v: 1,
  eventId: `evt_${n.toString(16).padStart(32, '0')}`,
  gateway: 'gw-1',
  site: 'site-s',
  device: 'smoke-1',
  profile: 'mqtt-smoke-detector',
  condition: 'smoke',
  class: 'fire',
  state: 'active',
  time: Date.now() - 1000 + n,
});
const batch = (seq: number): ReadingBatch => ({
  v: 1,
  gateway: 'gw-1',
  site: 'site-s',
  boot: 'b1',
  seq,
  sentAt: Date.now(),
  readings: [{ device: 'th-1', metric: 'temperature', value: 20 + seq, unit: 'Cel', time: Date.now() - 5000 + seq, quality: 'good', profile: 'mqtt-temperature-humidity' }],
});

describe("cloud-sync's sessions", () => {
  it('subscribes again on sessions that already exist, and the old all-in-one session gives up the alarm topics', async () => {
    [broker, fd] = await Promise.all([startTestBroker(), new FireDepartmentReceiver({ secret }).start()]);
    const service = await broker.credential({ role: 'service', id: 'cloud-sync' });
    const gatewayLogin = await broker.credential({ role: 'gateway', id: 'site-s.gw-1', site: 'site-s', gateway: 'gw-1' });
    // An earlier version's sessions: everything on one; the alarm session with only a part of what it needs now.
    const old = await broker.connect({ clientId: 'cosafe-cloud-sync-main', clean: false, ...service });
    await old.subscribeAsync([subscriptions.allReadings, subscriptions.allEvents, subscriptions.allStatus], { qos: 1 });
    await old.endAsync();
    const partial = await broker.connect({ clientId: 'cosafe-cloud-sync-main-alarms', clean: false, ...service });
    await partial.subscribeAsync(subscriptions.allStatus, { qos: 1 });
    await partial.endAsync();

    const config = buildConfig({ dataDir: join(dir, 'state'), http: { host: '127.0.0.1', port: 0 }, cloudSync: { fireDepartments: [{ id: 'fd', url: fd.url, secret }] } });
    const metrics = new Metrics();
    // /health's details (each lane's session) are for a monitor: the HTTP API checks the broker's credential store.
    const monitor = await broker.credential({ role: 'monitor', id: 'prometheus' });
    const loginGuard = new AddressGuard({ attempts: Number.MAX_SAFE_INTEGER, authFailures: 100, failedIdentities: 100, windowMs: 60_000, clock: systemClock });
    cloudSync = await startCloudSync({ config, brokerUrl: broker.broker.url, brokerAuth: service, logger: silentLogger, metrics, clock: systemClock, verifier: credentialVerifier(broker.store), loginGuard });
    const sync = cloudSync;
    const basic = `Basic ${Buffer.from(`${monitor.username}:${monitor.password}`).toString('base64')}`;
    await waitUntil('both lanes connected', async () => {
      const body = (await (await fetch(`${sync.httpUrl}/health`, { headers: { authorization: basic } })).json()) as { broker: { lanes: Record<string, boolean> } };
      return body.broker.lanes.alarm === true && body.broker.lanes.telemetry === true;
    });

    const gw = await broker.connect({ clientId: 'gw-1', ...gatewayLogin });
    // Published until the lanes' subscriptions are in place; the same event id is sent only once.
    await waitUntil(
      'the alarm at the fire department',
      async () => {
        await gw.publishAsync(topics.events('site-s', 'gw-1'), JSON.stringify(event(1)), { qos: 1 });
        return fd.alarms.some((a) => a.body.data.eventId === event(1).eventId);
      },
      10_000,
      200,
    );
    let seq = 0;
    await waitUntil(
      'a batch in the store',
      async () => {
        await gw.publishAsync(topics.readings('site-s', 'gw-1'), JSON.stringify(batch(++seq)), { qos: 1 });
        return (await sync.store.latest({ device: 'th-1' })).length > 0;
      },
      10_000,
      200,
    );
    expect(fd.alarms.filter((a) => a.body.data.eventId === event(1).eventId)).toHaveLength(1);

    await sync.stop();
    cloudSync = undefined;
    // With cloud-sync away: an event, then a batch, from one connection, so in that order in every session that has both.
    await gw.publishAsync(topics.events('site-s', 'gw-1'), JSON.stringify(event(2)), { qos: 1 });
    await gw.publishAsync(topics.readings('site-s', 'gw-1'), JSON.stringify(batch(1000)), { qos: 1 });
    // The listener goes on before the connection: a session's queue arrives right behind the CONNACK.
    const telemetry = mqtt.connect(broker.broker.url, { clientId: 'cosafe-cloud-sync-main', clean: false, reconnectPeriod: 0, ...service });
    const got: string[] = [];
    telemetry.on('message', (topic) => got.push(topic));
    ends.push(() => telemetry.endAsync(true));
    await waitUntil('the batch on the telemetry session', () => got.includes(topics.readings('site-s', 'gw-1')));
    expect(got.filter((t) => t === topics.events('site-s', 'gw-1'))).toEqual([]);
  });
});
