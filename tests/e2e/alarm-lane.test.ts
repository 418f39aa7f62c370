import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { topics, type AlarmEvent } from '../../broker/contract/index.js';
import { COMM_LOST, eventIdFor } from '../../edge/alarm-engine.js';
import { addCredential, startCosafe } from '../helpers/cosafe-cli.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * The alarm lane with real processes: `cosafe broker`, `cosafe cloud-sync` and
 * `cosafe gateway` apart, a real influxd and a fire department that checks
 * signatures. An alarm overtakes a telemetry backlog queued while cloud-sync
 * was down; a gateway killed between a condition change and anything after it
 * raises the alarm exactly once.
 */
const SITE = 'warehouse-4';
const GATEWAY = 'gw-lane';
const DB = 'lane';
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-lane-'));
const files = { broker: join(dir, 'broker.yaml'), cloudSync: join(dir, 'cloud-sync.yaml'), gateway: join(dir, 'gateway.yaml') };
const ports = { mqtt: 0, syncHttp: 0, gwHttp: 0 };
const url = () => `mqtt://127.0.0.1:${ports.mqtt}`;

let influx: InfluxServer;
let fd: FireDepartmentReceiver;
let broker: Spawned;
let cloudSync: Spawned;
let gateway: Spawned;
const logins: Record<'smoke' | 'service' | 'gateway' | 'streamer' | 'monitor' | 'troubles', { username: string; password: string }> = {} as never;

function withOutput(p: Spawned) {
  return (err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${p.output().slice(-4000)}`);
  };
}

async function startCloudSync() {
  cloudSync = startCosafe(['cloud-sync', '--config', files.cloudSync]);
  await waitUntil('cloud-sync to be healthy', async () => (await fetch(`http://127.0.0.1:${ports.syncHttp}/health`)).ok, 60_000, 100).catch(withOutput(cloudSync));
}

async function startGateway(env: NodeJS.ProcessEnv = {}) {
  gateway = startCosafe(['gateway', '--config', files.gateway], env);
  await waitUntil('the gateway to reach the hub', async () => (await fetch(`http://127.0.0.1:${ports.gwHttp}/health`)).ok, 60_000, 100).catch(withOutput(gateway));
}

async function smokeDetector(): Promise<MqttClient> {
  return mqtt.connectAsync(url(), { clientId: `smoke-${Date.now()}`, reconnectPeriod: 0, ...logins.smoke });
}

const streamedWhere = `site = '${SITE}-stream'`;
/**
 * Readings cloud-sync has taken from the broker and stored (in its buffer for InfluxDB, on disk), from its
 * /metrics, asked until its HTTP API answers (the alarm lane may deliver before that API is up).
 */
async function takenByCloudSync(): Promise<number> {
  let taken = 0;
  await waitUntil('cloud-sync /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${ports.syncHttp}/metrics`, { headers: { authorization: basic(logins.monitor) } })).text();
    taken = Number(/^cosafe_sync_readings_received_total (\S+)$/m.exec(text)?.[1] ?? 0);
    return true;
  }, 30_000, 20);
  return taken;
}

/** A scraper's login (a monitor credential): /metrics is not for anyone who reaches the port. */
const basic = (l: { username: string; password: string }) => `Basic ${Buffer.from(`${l.username}:${l.password}`).toString('base64')}`;

async function storedCount(where: string): Promise<number> {
  const [series] = await influx.query(`SELECT count(value) FROM reading WHERE ${where}`, DB);
  return Number(series?.values[0]?.[1] ?? 0);
}

beforeAll(async () => {
  [influx, fd] = await Promise.all([startInfluxDB(), new FireDepartmentReceiver({ secret }).start()]);
  [ports.mqtt, ports.syncHttp, ports.gwHttp] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(files.broker, stringify({ dataDir: join(dir, 'broker'), broker: { host: '127.0.0.1', port: ports.mqtt, limits: { publishesPerSecond: 10_000, publishBurst: 10_000 } } }));
  logins.service = await addCredential(files.broker, '--role', 'service', '--id', 'cloud-sync');
  logins.gateway = await addCredential(files.broker, '--role', 'gateway', '--site', SITE, '--gateway', GATEWAY);
  logins.smoke = await addCredential(files.broker, '--role', 'device', '--site', SITE, '--device', 'smoke-1');
  // A second gateway of its own site, that streams telemetry as fast as the broker takes it.
  logins.streamer = await addCredential(files.broker, '--role', 'gateway', '--site', `${SITE}-stream`, '--gateway', 'gw-stream');
  // A second gateway of the site whose devices all go silent at once (a power cut in one wing).
  logins.troubles = await addCredential(files.broker, '--role', 'gateway', '--site', SITE, '--gateway', 'gw-wing');
  writeFileSync(
    files.cloudSync,
    stringify({
      dataDir: join(dir, 'cloud-sync'),
      http: { host: '127.0.0.1', port: ports.syncHttp },
      cloudSync: {
        brokerUrl: url(),
        credentials: logins.service,
        influx: { url: influx.url, database: DB, flushIntervalMs: 50 },
        fireDepartments: [{ id: 'fd-lane', url: fd.url, secret, classes: ['fire', 'trouble'] }],
      },
    }),
  );
  // The cloud-sync process checks the HTTP API's logins against the credential store of its own data directory.
  logins.monitor = await addCredential(files.cloudSync, '--role', 'monitor', '--id', 'prometheus');
  writeFileSync(
    files.gateway,
    stringify({
      dataDir: join(dir, 'gateway'),
      http: { host: '127.0.0.1', port: ports.gwHttp },
      gateway: {
        id: GATEWAY,
        site: SITE,
        brokerUrl: url(),
        credentials: logins.gateway,
        batch: { maxDelayMs: 50 },
        devices: [{ id: 'smoke-1', profile: 'mqtt-smoke-detector', location: 'bay 2' }],
      },
    }),
  );
  broker = startCosafe(['broker', '--config', files.broker]);
  await waitUntil('the broker', async () => (await smokeDetector()).endAsync().then(() => true), 30_000, 100).catch(withOutput(broker));
  await startCloudSync();
  await startGateway();
});

afterAll(async () => {
  await Promise.all([gateway?.stop('SIGTERM'), cloudSync?.stop('SIGTERM')]);
  await broker?.stop('SIGTERM');
  await fd?.stop();
  await influx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A contract batch of `size` readings of the streaming gateway, its numbers from `from`. */
function batch(seq: number, size: number, t0: number): string {
  const readings = Array.from({ length: size }, (_, i) => ({ device: `th-${i % 50}`, metric: 'temperature', value: 21, unit: 'Cel', time: t0 + seq * size + i, quality: 'good', profile: 'mqtt-temperature-humidity' }));
  return JSON.stringify({ v: 1, gateway: 'gw-stream', site: `${SITE}-stream`, boot: 'stream-boot', seq, sentAt: Date.now(), readings });
}

/** A contract event: device `n` of the wing gateway reports silent. */
function silent(n: number, time: number): AlarmEvent {
  const device = `wing-${n}`;
  return { v: 1, eventId: eventIdFor(SITE, device, COMM_LOST, 'active', time), gateway: 'gw-wing', site: SITE, device, profile: 'mqtt-temperature-humidity', condition: COMM_LOST, class: 'trouble', state: 'active', metric: 'silence', value: 60, unit: 's', time };
}

/** The gateway's count of events the hub acknowledged. */
async function eventsPublished(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ports.gwHttp}/metrics`)).text();
  return Number(/^cosafe_edge_published_total\{kind="event"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

describe('the alarm lane', () => {
  it('an alarm raised while a telemetry backlog is queued reaches the fire department before that backlog is stored', { timeout: 180_000 }, async () => {
    const BATCHES = 400;
    const SIZE = 500;
    await cloudSync.stop('SIGTERM');
    // Cloud-sync is down: the gateway streams; the broker keeps it all for cloud-sync's session, on disk.
    const streamer = await mqtt.connectAsync(url(), { clientId: 'gw-stream', reconnectPeriod: 0, ...logins.streamer });
    const t0 = Date.now() - 7_200_000;
    for (let seq = 1; seq <= BATCHES; seq += 20) {
      await Promise.all(Array.from({ length: Math.min(20, BATCHES - seq + 1) }, (_, k) => streamer.publishAsync(topics.readings(`${SITE}-stream`, 'gw-stream'), batch(seq + k, SIZE, t0), { qos: 1 })));
    }
    await streamer.endAsync();
    // Then the smoke detector (a device of its own, through the real gateway): its alarm queues for cloud-sync too.
    const detector = await mqtt.connectAsync(url(), { clientId: 'smoke-backlog', reconnectPeriod: 0, ...logins.smoke });
    await detector.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, ts: Date.now() }), { qos: 1 });
    await detector.endAsync();
    await waitUntil('the gateway to hand the alarm to the hub', async () => /cosafe_edge_published_total\{kind="event"\} [1-9]/.test(await (await fetch(`http://127.0.0.1:${ports.gwHttp}/metrics`)).text()), 10_000, 50);
    // As the webhook comes in, how much of the backlog cloud-sync has stored (it only grows, so this is at least what it was then).
    fd.alarms.length = 0;
    const seen = fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active', 30_000);
    const storedAtAlarm = seen.then(() => takenByCloudSync());
    storedAtAlarm.catch(() => {});
    await startCloudSync();
    await seen.catch((e: Error) => {
      throw new Error(`${e.message}\n--- cloud-sync ---\n${cloudSync.output().slice(-3000)}\n--- gateway ---\n${gateway.output().slice(-2000)}`);
    });
    const atAlarm = await storedAtAlarm;
    expect(atAlarm).toBeLessThan(BATCHES * SIZE);
    // Nothing lost: the whole backlog is stored, after.
    await waitUntil(`all ${BATCHES * SIZE} streamed readings in InfluxDB`, async () => (await storedCount(streamedWhere)) === BATCHES * SIZE, 100_000, 250);
    // Back to normal for the next test.
    const clear = await smokeDetector();
    await clear.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: false, ts: Date.now() }), { qos: 1 });
    await clear.endAsync();
    await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'cleared', 15_000);
  });

  it('a gateway killed (SIGKILL) right after a condition changed raises the alarm exactly once, with one event id', async () => {
    await gateway.stop('SIGTERM');
    // Test-only: the gateway kills itself the moment the alarm's condition and event are written.
    await startGateway({ COSAFE_CRASH_AT: 'gateway-event-committed' });
    const ts = Date.now();
    // QoS 0, as many detectors send: nothing is redelivered, so only the gateway's own disk can remember the alarm.
    const detector = await smokeDetector();
    await detector.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, ts }), { qos: 0 });
    const exit = await gateway.exited;
    expect(exit, gateway.output().slice(-2000)).toBeNull(); // killed by a signal
    expect(gateway.child.signalCode).toBe('SIGKILL');
    await startGateway();
    // The detector still reports smoke, as it does every few seconds in alarm; then the all-clear
    // (QoS 1 from here on: the gateway's session keeps them if its adapter is not subscribed yet).
    await detector.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, ts: ts + 5000 }), { qos: 1 });
    await detector.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: false, ts: ts + 10_000 }), { qos: 1 });
    await detector.endAsync();
    // The all-clear follows every activation on the same lane, in order: once it is here, a second activation would be too.
    await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'cleared' && a.body.data.time === ts + 10_000, 30_000);
    const activations = fd.alarms.filter((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active' && (a.body.data.time as number) >= ts);
    expect([...new Set(activations.map((a) => a.body.data.eventId))]).toEqual([eventIdFor(SITE, 'smoke-1', 'smoke', 'active', ts)]);
    expect(activations).toHaveLength(1);
  });

  it('a fire alarm queued behind hundreds of trouble signals reaches the fire department ahead of them', { timeout: 180_000 }, async () => {
    const TROUBLES = 300;
    await cloudSync.stop('SIGTERM');
    // While cloud-sync is down, a wing of the site loses power: its gateway reports every device silent.
    const wing = await mqtt.connectAsync(url(), { clientId: 'gw-wing-alarms', reconnectPeriod: 0, ...logins.troubles });
    const t0 = Date.now();
    for (let n = 0; n < TROUBLES; n += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => wing.publishAsync(topics.events(SITE, 'gw-wing'), JSON.stringify(silent(n + k, t0 + n + k)), { qos: 1 })));
    }
    await wing.endAsync();
    // Then smoke, through the real gateway: its alarm is queued for cloud-sync behind all of them.
    const before = await eventsPublished();
    const ts = Date.now();
    const detector = await smokeDetector();
    await detector.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, ts }), { qos: 1 });
    await detector.endAsync();
    await waitUntil('the gateway to hand the alarm to the hub', async () => (await eventsPublished()) > before, 20_000, 50);
    fd.alarms.length = 0;
    await startCloudSync();
    const isSmoke = (a: (typeof fd.alarms)[number]) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active' && a.body.data.time === ts;
    const isTrouble = (a: (typeof fd.alarms)[number]) => a.body.data.gateway === 'gw-wing';
    await fd.waitFor(isSmoke, 30_000);
    // Every trouble signal is delivered too, after it: none is lost for going second.
    await waitUntil(`all ${TROUBLES} trouble signals at the fire department`, () => new Set(fd.alarms.filter(isTrouble).map((a) => a.body.data.eventId)).size === TROUBLES, 60_000, 100);
    const troublesAhead = fd.alarms.slice(0, fd.alarms.findIndex(isSmoke)).filter(isTrouble).length;
    // In arrival order at the broker the alarm was last; handled by priority, it goes ahead of nearly all of them.
    expect(troublesAhead).toBeLessThan(TROUBLES / 2);
    const clear = await smokeDetector();
    await clear.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: false, ts: Date.now() }), { qos: 1 });
    await clear.endAsync();
    await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'cleared', 15_000);
  });
});
