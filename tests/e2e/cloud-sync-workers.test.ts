import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Identity } from '../../broker/auth/identity.js';
import { topics, type ReadingBatch } from '../../broker/contract/index.js';
import { partitionOf } from '../../cloud-sync/partitions/partition.js';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { asOperator, startCosafe } from '../helpers/cosafe-cli.js';
import { issueCredentials } from '../helpers/credentials.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { registerSites } from '../helpers/sites.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * Issue 16's cloud-sync workers, with real processes only: one redis-server,
 * one `cosafe broker` of a cluster, two `cosafe cloud-sync` workers with
 * `cloudSync.partitions` (8 partitions, a lease ttl of 1.5 s) writing into a
 * real influxd and dispatching to a fire department that checks signatures,
 * and MQTT clients publishing as the gateways of eight sites, one in each
 * partition (chosen with the same hash the workers use).
 *
 * The sites are registered in each worker's own registry (its data
 * directory), as the README says to: every worker may come to hold any
 * partition.
 *
 * Each reading's value is its number and its time T0 + number, so the stored
 * values of a site must be exactly 0 .. n-1: none missing, none twice. An
 * alarm counts as handled once when all eight partitions' alarm sessions have
 * had it (each counts it as handled or as another partition's) and exactly
 * one handled it; it must also reach the fire department once and InfluxDB.
 */
const COUNT = 8;
const TTL_MS = 1500;
const DB = 'workers';
const GATEWAY = 'gw-1';
const DISTRICT = 'north';
const T0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const READINGS_PER_BATCH = 5;
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-workers-'));

/** One site per partition: site-<i> for the first i of each partition. */
const SITES: string[] = [];
for (let i = 0; SITES.length < COUNT; i++) {
  const site = `site-${i}`;
  if (!SITES.some((s) => partitionOf(s, COUNT) === partitionOf(site, COUNT))) SITES.push(site);
}
/** Registered while the workers run: its readings are stored from then on. */
const LATE_SITE = 'late-site-1';
/** Never registered: its alarms are handled all the same; its readings are not received (and that is counted). */
const UNREGISTERED = 'unlisted-1';

let redis: RedisServer;
let influx: InfluxServer;
let fd: FireDepartmentReceiver;
const procs: Record<string, Spawned> = {};
const ports = { broker: 0, w1: 0, w2: 0 };
const configs: Record<'w1' | 'w2', string> = { w1: '', w2: '' };
const dataDirs = { broker: join(dir, 'broker'), w1: join(dir, 'w1'), w2: join(dir, 'w2') };
const logins = new Map<string, { username: string; password: string }>();
const clients: MqttClient[] = [];
const brokerUrl = () => `mqtt://127.0.0.1:${ports.broker}`;

function file(name: string, config: object): string {
  const f = join(dir, name);
  writeFileSync(f, stringify(config));
  return f;
}

function withOutput(...names: string[]) {
  return (err: Error) => {
    throw new Error(`${err.message}\n${names.map((n) => `--- ${n} ---\n${procs[n]?.output().slice(-3000)}`).join('\n')}`);
  };
}

async function startWorker(name: 'w1' | 'w2'): Promise<void> {
  procs[name] = startCosafe(['cloud-sync', '--config', configs[name]]);
  await waitUntil(`${name} healthy`, async () => (await fetch(`http://127.0.0.1:${ports[name]}/health`)).ok, 60_000, 200).catch(withOutput(name, 'broker'));
}

/** A worker's metrics (its /metrics, with the operator token it wrote to its data directory). */
async function metric(name: 'w1' | 'w2', metricName: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ports[name]}/metrics`, asOperator(dataDirs[name]));
  if (!res.ok) throw new Error(`${name} /metrics: ${res.status}`);
  const text = await res.text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${metricName}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Who holds which partition, as the leases in Redis say. */
async function holders(): Promise<(string | null)[]> {
  return redis.client.mget(...Array.from({ length: COUNT }, (_, k) => `cosafe:cloud-sync:lease:${k}`));
}

async function stored(site: string): Promise<number[]> {
  const [series] = await influx.query(`SELECT value FROM reading WHERE site = '${site}'`, DB);
  const rows = (series?.values ?? []) as [number, number][];
  rows.forEach(([time, value]) => expect(value, `${site} reading at ${time}`).toBe(time - T0));
  return rows.map(([, value]) => value).sort((a, b) => a - b);
}

/** A gateway of one site, publishing numbered reading batches with QoS 1 (as the contract has them). */
class SiteGateway {
  seq = 0;
  /** Readings numbered 0 .. next-1 have been sent; `acked` of them acknowledged by the broker. */
  next = 0;
  acked = 0;
  private readonly boot = `b${randomBytes(4).toString('hex')}`;
  private constructor(
    readonly site: string,
    private readonly client: MqttClient,
  ) {}

  static async connect(site: string): Promise<SiteGateway> {
    const client = await connectMqttAsync(brokerUrl(), { ...logins.get(site)!, clientId: `${site}-${GATEWAY}-test` }, { baseMs: 100, capMs: 1000 });
    clients.push(client);
    return new SiteGateway(site, client);
  }

  /** Sends one batch; resolves when the broker acknowledged it. */
  async send(): Promise<void> {
    const readings = Array.from({ length: READINGS_PER_BATCH }, () => {
      const n = this.next++;
      return { device: 'num-1', metric: 'temperature', value: n, unit: 'Cel', time: T0 + n, quality: 'good' as const, profile: 'mqtt-temperature-humidity' };
    });
    const batch: ReadingBatch = { v: 1, gateway: GATEWAY, site: this.site, boot: this.boot, seq: this.seq++, sentAt: Date.now(), readings };
    await this.client.publishAsync(topics.readings(this.site, GATEWAY), JSON.stringify(batch), { qos: 1 });
    this.acked += readings.length;
  }

  /** An alarm of a device of the site (`device`: a new alarm point, not a repeat of an alarm that is still active). */
  async alarm(device = 'smoke-1'): Promise<string> {
    const event = alarmEvent({ site: this.site, gateway: GATEWAY, device });
    await this.client.publishAsync(topics.events(this.site, GATEWAY), JSON.stringify(event), { qos: 1 });
    return event.eventId;
  }
}

const gateways = new Map<string, SiteGateway>();

beforeAll(async () => {
  [redis, influx] = await Promise.all([startRedis({ appendfsync: 'always' }), startInfluxDB()]);
  fd = await new FireDepartmentReceiver({ secret }).start();
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  for (const d of Object.values(dataDirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
  const sites = [...SITES, LATE_SITE, UNREGISTERED];
  const identities: Identity[] = [...sites.map((site): Identity => ({ role: 'gateway', id: `${site}.${GATEWAY}`, site, gateway: GATEWAY })), { role: 'service', id: 'cloud-sync' }];
  const issued = await issueCredentials(dataDirs.broker, identities);
  sites.forEach((s, i) => logins.set(s, issued[i]!));
  const service = issued[sites.length]!;
  // The broker's registry too: it checks each gateway's site against it.
  registerSites(dataDirs.broker, [...SITES, LATE_SITE], DISTRICT);
  registerSites(dataDirs.w1, SITES, DISTRICT);
  registerSites(dataDirs.w2, SITES, DISTRICT);
  const brokerConfig = file('broker.yaml', { dataDir: dataDirs.broker, broker: { host: '127.0.0.1', port: ports.broker, cluster: { redisUrl: redis.url, brokerId: 'broker-a', heartbeatMs: 500, livenessMs: 1500 } } });
  for (const name of ['w1', 'w2'] as const) {
    configs[name] = file(`${name}.yaml`, {
      dataDir: dataDirs[name],
      http: { host: '127.0.0.1', port: ports[name] },
      cloudSync: {
        brokerUrl: brokerUrl(),
        credentials: service,
        influx: { url: influx.url, database: DB, flushIntervalMs: 50, maxRetryDelayMs: 500 },
        partitions: { count: COUNT, redisUrl: redis.url, workerId: name, leaseTtlMs: TTL_MS },
        public: { enabled: false },
        agency: { enabled: false },
        fireDepartments: [{ id: 'fd-north', district: DISTRICT, url: fd.url, secret }],
        // No escalation (a resend) within the test: one delivery per alarm.
        alarms: { ackTimeoutSeconds: 3600 },
      },
    });
  }
  procs.broker = startCosafe(['broker', '--config', brokerConfig]);
  await waitUntil('broker listening', () => {
    if (procs.broker!.child.exitCode !== null) throw new Error('broker exited');
    return /broker listening/.test(procs.broker!.output());
  }, 60_000, 100).catch(withOutput('broker'));
  for (const site of sites) gateways.set(site, await SiteGateway.connect(site));
}, 240_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await Promise.all(Object.values(procs).map((p) => p.stop('SIGTERM', 10_000)));
  await fd?.stop();
  await influx?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function sendRound(sites: readonly string[] = SITES): Promise<void> {
  await Promise.all(sites.map((s) => gateways.get(s)!.send()));
}

/** Every reading each site's gateway had acknowledged is stored, exactly once (values 0 .. n-1). */
async function expectAllStored(sites: readonly string[], names: string[]): Promise<void> {
  for (const site of sites) {
    const n = gateways.get(site)!.acked;
    await waitUntil(`${site}: all ${n} readings in InfluxDB`, async () => (await stored(site)).length >= n, 90_000, 250).catch(async (err: Error) =>
      withOutput(...names)(new Error(`${err.message} (have ${(await stored(site)).length})`)),
    );
    expect(await stored(site)).toEqual(Array.from({ length: n }, (_, i) => i));
  }
}

/** Waits until an event went through every partition's alarm session: handled by exactly one, acknowledged and left alone by the others. */
async function expectHandledOnce(eventId: string, before: { handled: number; others: number }, names: ('w1' | 'w2')[]): Promise<void> {
  const now = async () => {
    let handled = 0;
    let others = 0;
    for (const n of names) {
      handled += await metric(n, 'cosafe_sync_events_received_total');
      others += await metric(n, 'cosafe_sync_alarm_lane_other_partition_total');
    }
    return { handled: handled - before.handled, others: others - before.others };
  };
  await fd.waitFor((a) => a.body.data.eventId === eventId, 60_000);
  // Stored too (InfluxDB's event measurement: a point per event id and time).
  await waitUntil('the event in InfluxDB', async () => ((await influx.query(`SELECT state FROM event WHERE event_id = '${eventId}'`, DB))[0]?.values ?? []).length === 1, 60_000, 250);
  // Every one of the 8 alarm sessions has the event; each counts it, as handled or as another partition's.
  await waitUntil('the event in all 8 alarm sessions', async () => {
    const n = await now();
    return n.handled + n.others >= COUNT;
  }, 60_000, 200).catch(async (err: Error) => withOutput(...names)(new Error(`${err.message} (so far ${JSON.stringify(await now())}, sessions ${JSON.stringify(await redis.client.smembers('cosafe:cloud-sync:sessions'))}, w1 ${await metric('w1', 'cosafe_sync_events_received_total')}/${await metric('w1', 'cosafe_sync_alarm_lane_other_partition_total')})`)));
  expect(await now()).toEqual({ handled: 1, others: COUNT - 1 });
  expect(fd.alarms.filter((a) => a.body.data.eventId === eventId)).toHaveLength(1);
}

async function counts(names: ('w1' | 'w2')[]): Promise<{ handled: number; others: number }> {
  let handled = 0;
  let others = 0;
  for (const n of names) {
    handled += await metric(n, 'cosafe_sync_events_received_total');
    others += await metric(n, 'cosafe_sync_alarm_lane_other_partition_total');
  }
  return { handled, others };
}

describe('cloud-sync workers splitting the sites by partition', () => {
  it('spread the partitions over two workers and store every site’s readings exactly once', async () => {
    await startWorker('w1');
    // Alone, the first worker takes every partition (and so makes every partition's sessions).
    await waitUntil('w1 holding all 8 partitions', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === COUNT, 60_000, 200).catch(withOutput('w1'));
    await startWorker('w2');
    // With two live workers each holds at most ceil(8 / 2) = 4: w1 gives 4 up, w2 claims them.
    await waitUntil('4 partitions each', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === 4 && (await metric('w2', 'cosafe_sync_partitions_held')) === 4, 60_000, 200).catch(withOutput('w1', 'w2'));
    const leases = await holders();
    expect(leases.filter((h) => h === 'w1')).toHaveLength(4);
    expect(leases.filter((h) => h === 'w2')).toHaveLength(4);

    for (let i = 0; i < 20; i++) await sendRound();
    await expectAllStored(SITES, ['w1', 'w2']);
  }, 300_000);

  it('hands an alarm to exactly one worker: the holder of its site’s partition', async () => {
    const before = await counts(['w1', 'w2']);
    const eventId = await gateways.get(SITES[3]!)!.alarm();
    await expectHandledOnce(eventId, before, ['w1', 'w2']);
  }, 120_000);

  it('hands an alarm of a site nobody registered to exactly one worker, and counts the site whose readings are not received', async () => {
    const before = await counts(['w1', 'w2']);
    const eventId = await gateways.get(UNREGISTERED)!.alarm();
    // Not registered: it goes to every department (here the one), once.
    await expectHandledOnce(eventId, before, ['w1', 'w2']);
    const holder = (await holders())[partitionOf(UNREGISTERED, COUNT)] as 'w1' | 'w2';
    await waitUntil(`${holder} counting the unregistered site`, async () => (await metric(holder, 'cosafe_sync_unregistered_sites')) === 1, 30_000);
    expect(procs[holder]!.output()).toMatch(new RegExp(`"code":"COSAFE_ERR_SITE_UNREGISTERED".*"site":"${UNREGISTERED}".*readings are not received`));
  }, 120_000);

  it('subscribes the telemetry session to a site registered while it runs, and stores its readings from then on', async () => {
    registerSites(dataDirs.w1, [LATE_SITE], DISTRICT);
    registerSites(dataDirs.w2, [LATE_SITE], DISTRICT);
    const session = `cosafe-cloud-sync-p${partitionOf(LATE_SITE, COUNT)}`;
    // The subscription is in the session at the broker (in Redis, where the cluster keeps sessions).
    await waitUntil(`${session} subscribed to ${LATE_SITE}'s readings`, async () => (await redis.client.hkeys(`client:${session}`)).includes(`cosafe/v1/sites/${LATE_SITE}/gateways/+/readings`), 60_000, 200).catch(
      withOutput('w1', 'w2'),
    );
    for (let i = 0; i < 5; i++) await sendRound([LATE_SITE]);
    await expectAllStored([LATE_SITE], ['w1', 'w2']);
  }, 120_000);

  it('a worker SIGKILLed while readings flow: the other takes its partitions over, with everything queued for them', async () => {
    const deadPartitions = (await holders()).flatMap((h, k) => (h === 'w2' ? [k] : []));
    expect(deadPartitions).toHaveLength(4);
    const deadSite = SITES.find((s) => deadPartitions.includes(partitionOf(s, COUNT)))!;

    // Readings flow from every site while w2 is killed, and on while nobody holds its partitions.
    let flowing = true;
    const flow = (async () => {
      while (flowing) await sendRound();
    })();
    try {
      await waitUntil('readings flowing', () => gateways.get(SITES[0]!)!.acked >= 200, 60_000, 50);
      await procs.w2!.stop('SIGKILL');
      const sentAtKill = new Map(SITES.map((s) => [s, gateways.get(s)!.next]));
      // An alarm of a site of the dead worker's partitions, published while it is dead. Of another device than the
      // alarm raised above: w1 takes that one over still active and unacknowledged, and a repeated activation of an
      // active alarm sends nothing new (ISA-18.2; as on one worker).
      const before = await counts(['w1']);
      const eventId = await gateways.get(deadSite)!.alarm('smoke-2');
      // Its leases lapse (ttl 1.5 s); w1, now the only live worker, claims all 8 and consumes their queues.
      await waitUntil('w1 holding all 8 partitions', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === COUNT, 60_000, 200).catch(withOutput('w1'));
      expect((await holders()).every((h) => h === 'w1')).toBe(true);
      expect(await metric('w1', 'cosafe_sync_partition_lease_claims_total')).toBeGreaterThanOrEqual(COUNT + 4);
      // The alarm: dispatched once, by w1.
      await expectHandledOnce(eventId, before, ['w1']);
      // Some more rounds while w1 holds everything.
      const more = gateways.get(SITES[0]!)!.acked + 50;
      await waitUntil('more readings after the takeover', () => gateways.get(SITES[0]!)!.acked >= more, 60_000, 50);
      flowing = false;
      await flow;

      // Everything published after w2 died went to sessions w1 consumes: in InfluxDB now, with w2 still dead.
      for (const site of SITES) {
        const from = sentAtKill.get(site)!;
        const n = gateways.get(site)!.acked;
        await waitUntil(`${site}: readings ${from}..${n - 1} (published after the kill) in InfluxDB`, async () => (await stored(site)).filter((v) => v >= from).length >= n - from, 90_000, 250).catch(withOutput('w1'));
      }
    } finally {
      flowing = false;
      await flow;
    }

    // What w2 had taken from the broker before it died (in its InfluxDB buffer on its disk) is written when it
    // starts again with its data directory; then every reading is in InfluxDB exactly once, and w2 gets 4 back.
    await startWorker('w2');
    await expectAllStored([...SITES, LATE_SITE], ['w1', 'w2']);
    await waitUntil('4 partitions each again', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === 4 && (await metric('w2', 'cosafe_sync_partitions_held')) === 4, 60_000, 200).catch(withOutput('w1', 'w2'));
  }, 600_000);
});
