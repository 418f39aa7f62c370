import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import type { Identity } from '../broker/auth/identity.js';
import { freePort, waitUntil } from '../tests/helpers/processes.js';
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
  /** Identities the bench logs in with (publishers, the smoke detector, the observer). */
  identities: Identity[];
  /** The processes' log level (default warn: logging per message would be part of the figures). */
  logLevel?: string;
}

const SERVICE: Identity = { role: 'service', id: 'bench-cloud-sync' };

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
 * Cloud-sync workers (`cloudSync.partitions`, issue 16) are not here yet: one
 * `cosafe cloud-sync` takes every site. A "two workers" variant adds its
 * processes here, one per partition, each with its own dataDir and http port.
 */
export class ClusterStack implements LoadTarget {
  private constructor(
    private readonly dir: string,
    readonly brokerUrls: string[],
    readonly brokers: StackProcess[],
    /** `cosafe cloud-sync`: what LoadTarget calls the hub (its /metrics, event loop and RSS). */
    readonly hub: StackProcess,
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
      const syncDir = join(dir, 'cloud-sync');
      // Cloud-sync's HTTP API checks its own data directory's store: the bench's operator login goes there.
      for (const [id, login] of await issueLogins(syncDir, [ADMIN])) logins.set(id, login);
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

      const hub = new StackProcess(
        'cloud-sync',
        spawnCosafe([
          'cloud-sync',
          '--config',
          file('cloud-sync.yaml', {
            dataDir: syncDir,
            log: { level: o.logLevel ?? 'warn' },
            http: { host: '127.0.0.1', port: syncHttp },
            cloudSync: {
              brokerUrl: brokerUrls[0],
              credentials: service,
              influx: { url: o.influxUrl, database: o.database },
              fireDepartments: [{ id: 'fd-bench', url: o.fireDepartmentUrl, secret: o.fireDepartmentSecret, classes: ['fire', 'gas', 'co', 'trouble'] }],
            },
          }),
        ]),
        `http://127.0.0.1:${syncHttp}`,
        basicAuth(logins.get(ADMIN.id)!),
      );
      started.push(hub);
      await waitUntil('cloud-sync to answer /health', async () => (await hub.health()).status === 200, 60_000, 200).catch(withOutput(hub));

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
      return new ClusterStack(dir, brokerUrls, started.slice(0, o.brokers), hub, gateway, logins);
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
    return { ...Object.fromEntries(this.brokers.map((b) => [b.name, b])), 'cloud-sync': this.hub, gateway: this.gateway };
  }

  async stop(): Promise<void> {
    await this.gateway.stop();
    await this.hub.stop();
    for (const b of [...this.brokers].reverse()) await b.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
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
