import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { issueCredentials } from '../helpers/credentials.js';
import type { Identity } from '../../broker/auth/identity.js';
import { topics } from '../../broker/contract/index.js';
import { startCosafe } from '../helpers/cosafe-cli.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';
import { NumberedSensor } from '../simulators/numbered-sensor.js';

/**
 * Issue 16's kill test, with real processes only: one redis-server (AOF,
 * appendfsync always), two `cosafe broker` processes of one cluster (A and B),
 * a site broker the devices publish to, a real `cosafe gateway` whose
 * brokerUrl lists A then B, and a real `cosafe cloud-sync` on broker B writing
 * into a real influxd. Broker A is killed with SIGKILL while the gateway
 * streams readings: the gateway moves to B, and every reading is in InfluxDB
 * exactly once (each reading's number is its time, so the stored numbers must
 * be exactly 0 .. n-1), and so is every alarm and all-clear of a smoke
 * detector on the same gateway, raised before, during and after the kill.
 * (This test found that a persistent session subscribing to two filters in
 * one SUBSCRIBE never had its alarms delivered in a cluster:
 * broker/backends/redis-persistence.ts, addSubscriptions.)
 *
 * The credentials are issued in broker A's file only: broker B learns them
 * through Redis (the cluster's shared credential store).
 */
const SITE = 'depot-9';
const GATEWAY = 'gw-kill';
const DB = 'killtest';
const dir = mkdtempSync(join(tmpdir(), 'cosafe-cluster-kill-'));
/** Reading times start an hour ago, so every reading is in the past. */
const T0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const READINGS = 4000;
const ALARMS = 40;

let redis: RedisServer;
let influx: InfluxServer;
const procs: Record<string, Spawned> = {};
const ports = { site: 0, a: 0, b: 0, gwHttp: 0, syncHttp: 0 };
const logins = { devices: new Map<string, { username: string; password: string }>(), gatewayOnSite: { username: '', password: '' }, gatewayOnHub: { username: '', password: '' }, service: { username: '', password: '' } };
const url = (port: number) => `mqtt://127.0.0.1:${port}`;

function file(name: string, config: object): string {
  const f = join(dir, name);
  writeFileSync(f, stringify(config));
  return f;
}

function withOutput(...ps: (Spawned | undefined)[]) {
  return (err: Error) => {
    throw new Error(`${err.message}\n${ps.map((p) => `--- output ---\n${p?.output().slice(-3000)}`).join('\n')}`);
  };
}

const issue = issueCredentials;

async function startBroker(name: string, config: string): Promise<void> {
  const p = startCosafe(['broker', '--config', config]);
  procs[name] = p;
  await waitUntil(`${name} listening`, () => {
    if (p.child.exitCode !== null) throw new Error(`${name} exited`);
    return /broker listening/.test(p.output());
  }, 60_000, 100).catch(withOutput(p));
}

/** Which brokers the gateway's connections are on, as the cluster counts them in Redis (field `<broker>|<client id>`). */
async function gatewayBrokers(): Promise<string[]> {
  const fields = await redis.client.hkeys(`cosafe:connections:${SITE}.${GATEWAY}`);
  return fields.map((f) => f.slice(0, f.indexOf('|')));
}

/** The smoke detector's alarm events in InfluxDB, as `<time - T0>:<state>`. */
async function storedAlarms(): Promise<string[]> {
  const [series] = await influx.query(`SELECT state FROM event WHERE device = 'smoke-k' AND condition = 'smoke'`, DB);
  return ((series?.values ?? []) as [number, string][]).map(([time, state]) => `${time - T0}:${state}`);
}

async function storedNumbers(device: string): Promise<number[]> {
  const [series] = await influx.query(`SELECT value FROM reading WHERE device = '${device}' AND metric = 'humidity'`, DB);
  const rows = (series?.values ?? []) as [number, number][];
  rows.forEach(([time, value]) => expect(value, `reading at ${time}`).toBe((time - T0) % 100));
  return rows.map(([time]) => time - T0);
}

beforeAll(async () => {
  [redis, influx] = await Promise.all([startRedis({ appendfsync: 'always' }), startInfluxDB()]);
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  const cluster = (brokerId: string) => ({ redisUrl: redis.url, brokerId, heartbeatMs: 500, livenessMs: 1500 });
  // The numbered sensor streams far faster than a real device: lift the site broker's per-client publish rate.
  const siteConfig = file('site.yaml', { dataDir: join(dir, 'site'), broker: { host: '127.0.0.1', port: ports.site, limits: { publishesPerSecond: 5000, publishBurst: 5000 } } });
  const aConfig = file('a.yaml', { dataDir: join(dir, 'a'), broker: { host: '127.0.0.1', port: ports.a, cluster: cluster('broker-a') } });
  const bConfig = file('b.yaml', { dataDir: join(dir, 'b'), broker: { host: '127.0.0.1', port: ports.b, cluster: cluster('broker-b') } });
  const gatewayIdentity: Identity = { role: 'gateway', id: `${SITE}.${GATEWAY}`, site: SITE, gateway: GATEWAY };
  const devices = ['num-k', 'smoke-k'];
  const onSite = await issue(join(dir, 'site'), [...devices.map((device): Identity => ({ role: 'device', id: `${SITE}.${device}`, site: SITE, device })), gatewayIdentity]);
  devices.forEach((d, i) => logins.devices.set(d, onSite[i]!));
  logins.gatewayOnSite = onSite[devices.length]!;
  // Only in broker A's file: B gets them through Redis.
  [logins.gatewayOnHub, logins.service] = (await issue(join(dir, 'a'), [gatewayIdentity, { role: 'service', id: 'cloud-sync' }])) as [typeof logins.service, typeof logins.service];
  const gatewayConfig = file('gateway.yaml', {
    dataDir: join(dir, 'gateway'),
    http: { host: '127.0.0.1', port: ports.gwHttp },
    gateway: {
      id: GATEWAY,
      site: SITE,
      brokerUrl: [url(ports.a), url(ports.b)],
      credentials: logins.gatewayOnHub,
      deviceBrokerUrl: url(ports.site),
      deviceBrokerCredentials: logins.gatewayOnSite,
      batch: { maxDelayMs: 50, maxReadings: 200 },
      devices: [
        { id: 'num-k', profile: 'mqtt-temperature-humidity' },
        { id: 'smoke-k', profile: 'mqtt-smoke-detector' },
      ],
    },
  });
  const syncConfig = file('sync.yaml', {
    dataDir: join(dir, 'sync'),
    http: { host: '127.0.0.1', port: ports.syncHttp },
    cloudSync: { brokerUrl: url(ports.b), credentials: logins.service, influx: { url: influx.url, database: DB, flushIntervalMs: 50, maxRetryDelayMs: 500 } },
  });
  await Promise.all([startBroker('site', siteConfig), startBroker('a', aConfig)]);
  await startBroker('b', bConfig);
  procs.sync = startCosafe(['cloud-sync', '--config', syncConfig]);
  await waitUntil('cloud-sync healthy', async () => (await fetch(`http://127.0.0.1:${ports.syncHttp}/health`)).ok, 60_000, 200).catch(withOutput(procs.sync, procs.b));
  procs.gateway = startCosafe(['gateway', '--config', gatewayConfig]);
  await waitUntil('the gateway on broker A', async () => (await gatewayBrokers()).includes('broker-a'), 60_000, 200).catch(withOutput(procs.gateway, procs.a));
}, 240_000);

afterAll(async () => {
  await Promise.all(Object.values(procs).map((p) => p.stop('SIGTERM', 10_000)));
  await influx?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a cluster of brokers: broker A killed while a real gateway streams readings', () => {
  it('the gateway moves to broker B and every reading and alarm is in InfluxDB exactly once', async () => {
    // A smoke detector on the same gateway goes into alarm and clears, again and again, through the kill:
    // transition k has its own time (30 s apart, so no two look like chatter), active when k is even.
    const detector = await connectMqttAsync(url(ports.site), { clientId: 'smoke-k', ...logins.devices.get('smoke-k')! }, { baseMs: 200, capMs: 2000 });
    const alarmTime = (k: number) => 100_000 + k * 30_000;
    let transitions = 0;
    let upTo = ALARMS / 2; // the second half once broker A is dead
    const smoke = setInterval(() => {
      if (transitions >= upTo) return;
      const k = transitions++;
      detector.publish(topics.deviceUplink(SITE, 'smoke-k'), JSON.stringify({ smoke: k % 2 === 0, ts: T0 + alarmTime(k) }), { qos: 1 });
    }, 150);
    const sensor = await new NumberedSensor({ brokerUrl: url(ports.site), credentials: logins.devices.get('num-k')!, topic: topics.deviceUplink(SITE, 'num-k'), count: READINGS, ratePerSec: 1000, t0: T0, field: 'hum' }).start();
    try {
      // Mid-stream however fast the machine is: readings already through A, cloud-sync on B and into InfluxDB.
      await waitUntil('readings through broker A in InfluxDB', async () => (await storedNumbers('num-k')).length >= 500, 60_000, 200).catch(withOutput(procs.gateway, procs.sync));
      await waitUntil('alarms through broker A in InfluxDB', async () => (await storedAlarms()).length >= 3, 60_000, 200).catch(withOutput(procs.gateway, procs.sync));
      await procs.a!.stop('SIGKILL');
      await waitUntil('the gateway on broker B', async () => (await gatewayBrokers()).includes('broker-b'), 60_000, 200).catch(withOutput(procs.gateway, procs.b));
      upTo = ALARMS;
      await sensor.done;
      await waitUntil(`all ${READINGS} readings in InfluxDB`, async () => (await storedNumbers('num-k')).length >= READINGS, 90_000, 500).catch(async (err: Error) =>
        withOutput(procs.gateway, procs.b, procs.sync)(new Error(`${err.message} (have ${(await storedNumbers('num-k')).length})`)),
      );
      // Exactly once: the numbers stored are 0 .. n-1, none missing, none twice.
      expect(await storedNumbers('num-k')).toEqual(Array.from({ length: READINGS }, (_, n) => n));
      // Every alarm and all-clear, each once, none lost to the kill, none raised twice.
      const expected = Array.from({ length: ALARMS }, (_, k) => `${alarmTime(k)}:${k % 2 === 0 ? 'active' : 'cleared'}`);
      await waitUntil(`all ${ALARMS} alarm transitions in InfluxDB`, async () => (await storedAlarms()).length >= ALARMS, 90_000, 500).catch(async (err: Error) =>
        withOutput(procs.gateway, procs.b, procs.sync)(new Error(`${err.message} (have ${(await storedAlarms()).join(' ')})`)),
      );
      expect(await storedAlarms()).toEqual(expected);
    } finally {
      clearInterval(smoke);
      await detector.endAsync(true);
      await sensor.stop();
    }
  }, 300_000);
});
