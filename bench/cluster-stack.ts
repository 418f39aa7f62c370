import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import type { Identity } from '../broker/auth/identity.js';
import { freePort, waitUntil } from '../tests/helpers/processes.js';
import { partitionOf } from '../cloud-sync/partitions/partition.js';
import { registerSites } from '../tests/helpers/sites.js';
import { leasesSettled } from './cluster-figures.js';
import type { LoadTarget } from './phases.js';
import { ADMIN, BENCH_BROKER_LIMITS, GATEWAY, GATEWAY_IDENTITY, SITE, SMOKE, StackProcess, basicAuth, issueLogins, spawnCosafe, waitForGateway, withOutput, type Login } from './stack-processes.js';

export interface ClusterStackOptions {
  /** The cluster's Redis database (one per variant, so no session of an earlier one is in it). */
  redisUrl: string;
  influxUrl: string;
  database: string;
  fireDepartmentUrl: string;
  fireDepartmentSecret: string;
  /** `cosafe broker` processes sharing the Redis. */
  brokers: number;
  /**
   * `cosafe cloud-sync` processes. More than one: workers with
   * `cloudSync.partitions` (README "Cloud-sync workers"), `partitions` of
   * them, each worker's registry holding `sites`.
   */
  workers?: number;
  partitions?: number;
  /** Registered in every worker's registry (with partitions a site's readings are received only if it is registered). */
  sites?: readonly string[];
  /** Identities the bench logs in with (publishers, the smoke detector, the observer). */
  identities: Identity[];
  /** The processes' log level (default warn: logging per message would be part of the figures). */
  logLevel?: string;
}

const SERVICE: Identity = { role: 'service', id: 'bench-cloud-sync' };
const DISTRICT = 'bench';

/**
 * A cluster as README's "A cluster of brokers" runs it: `brokers` processes of
 * `cosafe broker` with `broker.cluster` on one Redis, one `cosafe cloud-sync`
 * connected to the first broker, and the alarm probe's `cosafe gateway` on the
 * last one (with two brokers, its alarms cross from one broker to the other
 * through Redis, as they do for every gateway not on cloud-sync's broker).
 *
 * Credentials are issued in the first broker's data directory only, as an
 * operator would on one broker: the others take them from Redis at their start.
 *
 * With `workers` > 1, cloud-sync runs as that many workers with
 * `cloudSync.partitions` (each its own dataDir, registry and http port),
 * worker k connected to broker k first, so that with as many brokers as
 * workers each broker delivers to one of them; the stack is ready once the
 * leases have settled (every partition held, no worker past its share), so
 * no partition moves during the measurement.
 */
export class ClusterStack implements LoadTarget {
  private constructor(
    private readonly dir: string,
    readonly brokerUrls: string[],
    readonly brokers: StackProcess[],
    /** `cosafe cloud-sync` (with workers, the one holding the probe's site): what LoadTarget calls the hub (its event loop and RSS). */
    readonly hub: StackProcess,
    /** Every `cosafe cloud-sync` (their /metrics are summed for what cloud-sync received). */
    readonly workers: StackProcess[],
    readonly gateway: StackProcess,
    private readonly logins: Map<string, Login>,
  ) {}

  /** The broker the probe's gateway and smoke detector use. */
  get probeBrokerUrl(): string {
    return this.brokerUrls[this.brokerUrls.length - 1]!;
  }

  static async start(o: ClusterStackOptions): Promise<ClusterStack> {
    if (!Number.isInteger(o.brokers) || o.brokers < 1) throw new Error(`ClusterStack: brokers must be 1 or more, not ${o.brokers}`);
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-bench-cluster-'));
    const started: StackProcess[] = [];
    const file = (name: string, config: object) => {
      const f = join(dir, name);
      writeFileSync(f, stringify(config));
      return f;
    };
    try {
      const mqttPorts = await Promise.all(Array.from({ length: o.brokers }, () => freePort()));
      const [syncHttp, gwHttp] = [await freePort(), await freePort()];
      const brokerUrls = mqttPorts.map((port) => `mqtt://127.0.0.1:${port}`);
      const brokerDir = (i: number) => join(dir, `broker-${i}`);
      const logins = await issueLogins(brokerDir(0), [GATEWAY_IDENTITY, SERVICE, ...o.identities]);
      const workers = o.workers ?? 1;
      if (!Number.isInteger(workers) || workers < 1) throw new Error(`ClusterStack: workers must be 1 or more, not ${workers}`);
      const partitions = workers > 1 ? o.partitions : undefined;
      if (workers > 1 && !(partitions !== undefined && Number.isInteger(partitions) && partitions >= workers)) throw new Error(`ClusterStack: ${workers} workers need partitions, at least ${workers}, not ${partitions}`);
      // One worker keeps the directory and the process name of the variants before workers existed.
      const syncName = (k: number) => (workers === 1 ? 'cloud-sync' : `cloud-sync-${k}`);
      const syncDirs = Array.from({ length: workers }, (_, k) => join(dir, syncName(k)));
      const syncPorts = [syncHttp, ...(await Promise.all(Array.from({ length: workers - 1 }, () => freePort())))];
      // Cloud-sync's HTTP API checks its own data directory's store: the bench's operator login goes there, one per worker.
      const admins = await Promise.all(syncDirs.map(async (d) => (await issueLogins(d, [ADMIN])).get(ADMIN.id)!));
      logins.set(ADMIN.id, admins[0]!);
      for (const d of syncDirs) if (partitions !== undefined) registerSites(d, o.sites ?? [], DISTRICT, 'Bench');
      const service = logins.get(SERVICE.id)!;

      // One at a time: a broker takes the cluster's credentials from Redis at its start, so the first must have put them there.
      for (let i = 0; i < o.brokers; i++) {
        const config = file(`broker-${i}.yaml`, {
          dataDir: brokerDir(i),
          log: { level: o.logLevel ?? 'warn' },
          broker: { host: '127.0.0.1', port: mqttPorts[i], limits: BENCH_BROKER_LIMITS, cluster: { redisUrl: o.redisUrl, brokerId: `bench-broker-${i}` } },
        });
        const broker = new StackProcess(`broker-${i}`, spawnCosafe(['broker', '--config', config]), '');
        started.push(broker);
        // A login that succeeds proves the broker listens and has the credentials (the others' from Redis).
        await waitUntil(`${broker.name} to accept a login`, () => canLogIn(broker, brokerUrls[i]!, service), 60_000, 200).catch(withOutput(broker));
      }

      const syncs: StackProcess[] = [];
      for (let k = 0; k < workers; k++) {
        const own = k % o.brokers;
        const sync = new StackProcess(
          syncName(k),
          spawnCosafe([
            'cloud-sync',
            '--config',
            file(`${syncName(k)}.yaml`, {
              dataDir: syncDirs[k],
              log: { level: o.logLevel ?? 'warn' },
              http: { host: '127.0.0.1', port: syncPorts[k] },
              cloudSync: {
                // Its own broker first, the others to fail over to.
                brokerUrl: partitions === undefined ? brokerUrls[0] : [brokerUrls[own]!, ...brokerUrls.filter((_, i) => i !== own)],
                credentials: service,
                influx: { url: o.influxUrl, database: o.database },
                fireDepartments: [{ id: 'fd-bench', url: o.fireDepartmentUrl, secret: o.fireDepartmentSecret, classes: ['fire', 'gas', 'co', 'trouble'] }],
                ...(partitions === undefined
                  ? {}
                  : {
                      partitions: { count: partitions, redisUrl: o.redisUrl, workerId: `bench-sync-${k}` },
                      // Required off with partitions (not yet split between workers).
                      public: { enabled: false },
                      agency: { enabled: false },
                    }),
              },
            }),
          ]),
          `http://127.0.0.1:${syncPorts[k]}`,
          basicAuth(admins[k]!),
        );
        started.push(sync);
        syncs.push(sync);
        await waitUntil(`${sync.name} to answer /health`, async () => (await sync.health()).status === 200, 60_000, 200).catch(withOutput(sync));
      }
      let hub = syncs[0]!;
      if (partitions !== undefined) {
        const held = await settledLeases(syncs, partitions);
        const probePartition = partitionOf(SITE, partitions);
        hub = syncs[held.findIndex((ks) => ks.includes(probePartition))]!;
      }

      const probeBroker = brokerUrls[brokerUrls.length - 1]!;
      const gateway = new StackProcess(
        'gateway',
        spawnCosafe([
          'gateway',
          '--config',
          file('gateway.yaml', {
            dataDir: join(dir, 'gateway'),
            log: { level: o.logLevel ?? 'warn' },
            http: { host: '127.0.0.1', port: gwHttp },
            gateway: {
              id: GATEWAY,
              site: SITE,
              // Its own broker first, the others to fail over to (README: a list, each reconnect tries the next).
              brokerUrl: [probeBroker, ...brokerUrls.slice(0, -1)],
              credentials: logins.get(GATEWAY_IDENTITY.id)!,
              devices: [{ id: SMOKE, profile: 'mqtt-smoke-detector', location: 'bench' }],
            },
          }),
        ]),
        `http://127.0.0.1:${gwHttp}`,
      );
      started.push(gateway);
      await waitForGateway(hub, gateway);
      return new ClusterStack(dir, brokerUrls, started.slice(0, o.brokers), hub, syncs, gateway, logins);
    } catch (err) {
      for (const p of started.reverse()) await p.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  login(id: string): Login {
    const l = this.logins.get(id);
    if (!l) throw new Error(`no login ${id}`);
    return l;
  }

  /** Every process of the cluster by name, for the CPU meter and RSS. */
  processes(): Record<string, StackProcess> {
    return { ...Object.fromEntries([...this.brokers, ...this.workers].map((p) => [p.name, p])), gateway: this.gateway };
  }

  async stop(): Promise<void> {
    await this.gateway.stop();
    for (const w of this.workers) await w.stop();
    for (const b of [...this.brokers].reverse()) await b.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Waits until every partition is held and no worker holds more than its
 * share (a worker that started first takes them all, then gives some up as
 * the others join); returns what each worker holds.
 */
async function settledLeases(workers: StackProcess[], count: number): Promise<number[][]> {
  let held: number[][] = [];
  await waitUntil(
    `the ${workers.length} workers to share the ${count} partitions`,
    async () => {
      held = await Promise.all(workers.map(async (w) => ((await w.health()).body.dispatch as { partitions?: number[] } | undefined)?.partitions ?? []));
      return leasesSettled(held, count);
    },
    60_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; held: ${JSON.stringify(held)}`);
  });
  return held;
}

/** One MQTT login (clean session, no retries); false while the broker is not up or refuses it. */
async function canLogIn(broker: StackProcess, url: string, login: Login): Promise<boolean> {
  if (broker.proc.child.exitCode !== null) throw new Error(`${broker.name} exited with ${broker.proc.child.exitCode}`);
  // allowRetries false: a refused socket rejects (on 'close') rather than wait for a retry that reconnectPeriod 0 never makes.
  const client = await mqtt.connectAsync(url, { ...login, clientId: `bench-ready-${broker.name}-${process.pid}`, clean: true, reconnectPeriod: 0, connectTimeout: 5000 }, false).catch(() => undefined);
  if (!client) return false;
  const connected = client.connected;
  await client.endAsync();
  return connected;
}
