import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';
import type { Identity } from '../../broker/auth/identity.js';
import { topics, type AlarmEvent } from '../../broker/contract/index.js';
import { SiteStore, siteStorePath } from '../../cloud-sync/registry/site-store.js';
import type { SiteInput } from '../../cloud-sync/registry/site.js';
import { startStack, type Stack } from '../../cli/compose.js';
import { buildConfig, type ConfigInput } from '../../core/config.js';
import { requireBinary, spawnLogged, waitUntil, type Spawned } from './processes.js';

export interface FireHub {
  stack: Stack;
  dataDir: string;
  api: string;
  brokerUrl: string;
  credentials: CredentialStore;
  credential(identity: Identity): Promise<{ username: string; password: string }>;
  /** An admin's login, issued at start: for /health's details, /metrics and anything else. */
  admin: { username: string; password: string };
  /** Publishes an event as the gateway `login` would, QoS 1. */
  publishEvent(login: { username: string; password: string }, event: AlarmEvent): Promise<void>;
  /** mosquitto_sub (Debian's mosquitto-clients) on `topic`, resolved once its subscription is granted. */
  subscribe(login: { username: string; password: string }, topic: string): Promise<Spawned & { messages: () => string[] }>;
  /** GET/POST the hub API with HTTP Basic. */
  http(path: string, login?: { username: string; password: string }, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** The hub (broker and cloud-sync) in this process on free ports, with sites registered and fire departments configured. */
export async function startFireHub(o: { sites: SiteInput[]; cloudSync: NonNullable<ConfigInput['cloudSync']>; broker?: NonNullable<ConfigInput['broker']>; http?: NonNullable<ConfigInput['http']> }): Promise<FireHub> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-fire-'));
  const sites = SiteStore.open(siteStorePath(dataDir));
  for (const s of o.sites) sites.put(s);
  sites.close();
  const config = buildConfig({ dataDir, log: { level: 'silent' }, broker: { host: '127.0.0.1', port: 0, ...o.broker }, http: { ...o.http, port: 0 }, cloudSync: o.cloudSync });
  const stack = await startStack(config, ['broker', 'cloud-sync'], pino({ level: 'silent' }));
  const credentials = CredentialStore.open(credentialStorePath(dataDir));
  const admin = { username: 'test-admin', password: (await credentials.add({ role: 'admin', id: 'test-admin' })).secret };
  // Up as a monitor sees it: both of cloud-sync's lanes on the broker (the telemetry lane's worker thread connects a moment later).
  await waitUntil('the hub to report ok', async () => (await fetch(`${stack.cloudSync!.httpUrl}/health`)).status === 200, 10_000);
  const clients: MqttClient[] = [];
  const subs: Spawned[] = [];
  return {
    stack,
    dataDir,
    api: stack.cloudSync!.httpUrl,
    brokerUrl: stack.broker!.url,
    credentials,
    admin,
    async credential(identity) {
      const { secret } = await credentials.add(identity);
      return { username: identity.id, password: secret };
    },
    async publishEvent(login, event) {
      const c = await mqtt.connectAsync(stack.broker!.url, { ...login, reconnectPeriod: 0 });
      clients.push(c);
      await c.publishAsync(topics.events(event.site, event.gateway), JSON.stringify(event), { qos: 1 });
      await c.endAsync();
    },
    async subscribe(login, topic) {
      const port = new URL(stack.broker!.url).port;
      // stdbuf: mosquitto_sub's stdout is a pipe here, and its SUBACK line must not wait in a buffer.
      const sub = spawnLogged(requireBinary('stdbuf', 'coreutils'), ['-oL', requireBinary('mosquitto_sub', 'mosquitto-clients'), '-d', '-h', '127.0.0.1', '-p', port, '-u', login.username, '-P', login.password, '-q', '1', '-t', topic]);
      subs.push(sub);
      await waitUntil(`mosquitto_sub to subscribe to ${topic}`, () => /SUBACK/.test(sub.output()), 10_000);
      return { ...sub, messages: () => sub.output().split('\n').filter((l) => l.startsWith('{')) };
    },
    http(path, login, init = {}) {
      const headers = new Headers(init.headers);
      if (login) headers.set('authorization', `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}`);
      if (init.body) headers.set('content-type', 'application/json');
      return fetch(`${stack.cloudSync!.httpUrl}${path}`, { ...init, headers });
    },
    async close() {
      for (const s of subs) await s.stop('SIGKILL');
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await stack.stop();
      credentials.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
