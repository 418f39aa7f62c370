import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';
import type { Identity } from '../../broker/auth/identity.js';
import { startHubBroker, type HubBroker } from '../../broker/hub.js';
import { buildConfig, type ConfigInput } from '../../core/config.js';
import { Metrics } from '../../core/metrics.js';
import { startRedis, type RedisServer } from './redis.js';

export interface TestBroker {
  broker: HubBroker;
  metrics: Metrics;
  dataDir: string;
  /** A second connection to the credential store file, as the CLI would open it. */
  store: CredentialStore;
  /** Log lines (JSON) at warn and above. */
  logs: () => { code?: string; msg: string; [k: string]: unknown }[];
  /** Issues a credential and returns the MQTT login. */
  credential(identity: Identity): Promise<{ username: string; password: string }>;
  /** mqtt.js over the TCP listener (or `url`), ended by close(). */
  connect(options?: IClientOptions, url?: string): Promise<MqttClient>;
  close(): Promise<void>;
}

/**
 * The real hub broker in this process, on 127.0.0.1 and free ports, with its
 * credential store in a temporary data directory.
 */
export async function startTestBroker(broker: NonNullable<ConfigInput['broker']> = {}): Promise<TestBroker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-broker-'));
  const config = buildConfig({ dataDir, broker: { host: '127.0.0.1', port: 0, ...broker } });
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const metrics = new Metrics();
  const hub = await startHubBroker({ config: config.broker, credentialsPath: credentialStorePath(dataDir), logger, metrics });
  const store = CredentialStore.open(credentialStorePath(dataDir));
  const clients: MqttClient[] = [];
  return {
    broker: hub,
    metrics,
    dataDir,
    store,
    logs: () => lines.map((l) => JSON.parse(l) as { msg: string }),
    async credential(identity) {
      const { secret } = await store.add(identity);
      return { username: identity.id, password: secret };
    },
    async connect(options = {}, url = hub.url) {
      // 30 s: a CONNACK can wait seconds on a loaded CI machine (in a cluster,
      // behind Redis fsyncs); the timeout only catches a broker that never answers.
      const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 30_000, ...options }, false);
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await hub.close();
      store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the error when mqtt.js cannot connect (a refused CONNECT, a closed socket). */
export async function connectError(url: string, options: IClientOptions): Promise<Error & { code?: number }> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options }, false);
    await c.endAsync(true);
  } catch (err) {
    return err as Error & { code?: number };
  }
  throw new Error('expected the connection to be refused');
}

/** Two hub brokers (A and B) of one cluster on a real redis-server (appendfsync always), as broker.cluster runs them. */
export interface TestCluster {
  redis: RedisServer;
  a: TestBroker;
  b: TestBroker;
  close(): Promise<void>;
}

export async function startTestCluster(ids: [string, string], broker: NonNullable<ConfigInput['broker']> = {}): Promise<TestCluster> {
  const redis = await startRedis({ appendfsync: 'always' });
  const cluster = { redisUrl: redis.url, heartbeatMs: 500, livenessMs: 1500 };
  const a = await startTestBroker({ ...broker, cluster: { ...cluster, brokerId: ids[0] } });
  const b = await startTestBroker({ ...broker, cluster: { ...cluster, brokerId: ids[1] } });
  return {
    redis,
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await redis.stop();
    },
  };
}

/** Every payload the client receives from now on, as text. */
export function received(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (_topic, payload) => got.push(payload.toString()));
  return got;
}
