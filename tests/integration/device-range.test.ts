import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';
import { topics } from '../../broker/contract/index.js';
import { startStack, type Stack } from '../../cli/compose.js';
import { buildConfig, type Config } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { freePort, waitUntil } from '../helpers/processes.js';

/**
 * A range in gateway.devices, as a building owner uses it: one entry for many
 * sensors of one model, each logging in with its own credential and publishing
 * on its own uplink, read by the gateway's MQTT adapter and shown one by one in
 * the gateway's /health. The sensors are mqtt.js clients and, for one,
 * mosquitto_pub.
 */
const SITE = 'tower-3';
const COUNT = 12;
const ids = Array.from({ length: COUNT }, (_, i) => `th-${String(i + 1).padStart(4, '0')}`);
let stack: Stack;
let config: Config;
let secrets: Map<string, string>;
let mqttPort: number;
let healthUrl: string;

type HealthDevice = { id: string; profile: string; location?: string; lastSeen: number | null; commLost: boolean };
const health = async () => (await (await fetch(healthUrl)).json()) as { devices: HealthDevice[] };

beforeAll(async () => {
  mqttPort = await freePort();
  const httpPort = await freePort();
  healthUrl = `http://127.0.0.1:${httpPort}/health`;
  config = buildConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'cosafe-range-')),
    broker: { host: '127.0.0.1', port: mqttPort, persistence: 'memory' },
    http: { host: '127.0.0.1', port: httpPort },
    gateway: {
      site: SITE,
      batch: { maxDelayMs: 20 },
      devices: [
        { id: 'smoke-lobby', profile: 'mqtt-smoke-detector' },
        { range: { from: ids[0]!, to: ids.at(-1)! }, profile: 'mqtt-temperature-humidity', location: 'offices, floors 2-4' },
      ],
    },
  });
  // Each sensor of the range has its own device credential, as `cosafe credentials import` issues them.
  const store = CredentialStore.open(credentialStorePath(config.dataDir));
  const issued = await store.addMany(ids.map((device) => ({ role: 'device', id: `${SITE}.${device}`, site: SITE, device })));
  store.close();
  secrets = new Map(issued.map((c) => [c.credential.identity.id, c.secret]));
  stack = await startStack(config, ['broker', 'gateway'], silentLogger);
});

afterAll(async () => {
  await stack?.stop();
});

describe('a device range through the gateway', () => {
  it('reads every device of the range on its own uplink and lists each in /health', async () => {
    const before = await health();
    expect(before.devices.map((d) => d.id)).toEqual(['smoke-lobby', ...ids]);
    expect(before.devices.filter((d) => d.id.startsWith('th-')).every((d) => d.profile === 'mqtt-temperature-humidity' && d.location === 'offices, floors 2-4' && d.lastSeen === null)).toBe(true);

    const sensors = ids.slice(1).map((device) => mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: device, username: `${SITE}.${device}`, password: secrets.get(`${SITE}.${device}`)!, reconnectPeriod: 0 }));
    try {
      await Promise.all(sensors.map((s) => new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject))));
      await Promise.all(sensors.map((s, i) => s.publishAsync(topics.deviceUplink(SITE, ids[i + 1]!), JSON.stringify({ temperature: 20 + i, humidity: 40 }), { qos: 1 })));
    } finally {
      await Promise.all(sensors.map((s) => s.endAsync()));
    }
    // The first of the range through a client nobody here wrote.
    const first = `${SITE}.${ids[0]}`;
    const r = await mosquittoPub(['-p', String(mqttPort), ...login({ username: first, password: secrets.get(first)! }), '-t', topics.deviceUplink(SITE, ids[0]!), '-q', '1', '-m', '{"temperature": 19.5, "humidity": 41}']);
    expect(r.code, r.stderr).toBe(0);

    await waitUntil('every device of the range heard by the gateway', async () => (await health()).devices.filter((d) => d.id.startsWith('th-') && d.lastSeen !== null).length === COUNT);
    const after = await health();
    expect(after.devices.find((d) => d.id === 'smoke-lobby')!.lastSeen).toBeNull();
    expect(after.devices.every((d) => !d.commLost)).toBe(true);
  });
});
