import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { topics } from '../../broker/contract/index.js';
import { addCredential, asOperator, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * A building owner's site config and profiles, as `cosafe run` uses them: edited
 * while it runs, a device that goes silent, and a hub that is killed mid-alarm.
 */
const SITE = 'school-3';
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-site-'));
const configFile = join(dir, 'site.yaml');
const profileDir = join(dir, 'profiles');

let fd: FireDepartmentReceiver;
let hub: Spawned;
/** One MQTT connection per device, each with its own credential, as real devices have. */
const logins = new Map<string, { username: string; password: string }>();
const sensors = new Map<string, MqttClient>();
let mqttPort: number;
let api: string;

const quickSensor = {
  id: 'quick-sensor',
  vendor: 'Test',
  model: 'Q-1',
  description: 'A sensor that must report every second',
  version: 1,
  transport: 'mqtt',
  supervision: { reportIntervalS: 1, silentAfterS: 2 },
  points: [{ metric: 'temperature', unit: 'Cel', range: [-40, 125], read: { json: 't' } }],
  samples: [{ input: '{"t": 20}', expect: { readings: [{ metric: 'temperature', value: 20 }] } }],
};

function writeConfig(devices: Record<string, unknown>[]) {
  writeFileSync(
    configFile,
    stringify({
      dataDir: join(dir, 'state'),
      broker: { host: '127.0.0.1', port: mqttPort },
      http: { port: Number(new URL(api).port) },
      gateway: { id: 'gw-school', site: SITE, profileDir, batch: { maxDelayMs: 20 }, devices },
      cloudSync: { fireDepartments: [{ id: 'fd', url: fd.url, secret, classes: ['fire', 'trouble'] }] },
    }),
  );
}

const baseDevices = [
  { id: 'smoke-1', profile: 'mqtt-smoke-detector', location: 'gym' },
  { id: 'quiet-1', profile: 'quick-sensor', location: 'boiler room' },
];

async function startHub() {
  hub = startCosafe(['run', '--config', configFile]);
  await waitUntil('the hub to be healthy', async () => (await fetch(`${api}/health`)).ok, 60_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n${hub.output()}`);
  });
}

async function publish(device: string, payload: object) {
  let client = sensors.get(device);
  if (!client) {
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `site-${device}-${Date.now()}`, ...logins.get(device)! });
    sensors.set(device, client);
  }
  await client.publishAsync(topics.deviceUplink(SITE, device), JSON.stringify(payload), { qos: 1 });
}

async function disconnectSensors() {
  for (const c of sensors.values()) await c.endAsync(true);
  sensors.clear();
}
/** The devices of the site's gateway as the hub shows them (`cosafe status`, /api/v1/gateways), from its status reports. */
const onHub = async () => ((await (await fetch(`${api}/api/v1/gateways`, asOperator(join(dir, 'state')))).json()) as { gateways: { health?: { devices?: { id: string; commLost: boolean }[] } }[] }).gateways.flatMap((g) => g.health?.devices ?? []);
const latest = async (device: string) => ((await (await fetch(`${api}/api/v1/readings/latest?device=${device}`, asOperator(join(dir, 'state')))).json()) as { readings: { metric: string; value: number }[] }).readings;

beforeAll(async () => {
  fd = await new FireDepartmentReceiver({ secret }).start();
  mqttPort = await freePort();
  api = `http://127.0.0.1:${await freePort()}`;
  mkdirSync(profileDir);
  writeFileSync(join(profileDir, 'quick-sensor.yaml'), stringify(quickSensor));
  writeConfig(baseDevices);
  for (const device of ['smoke-1', 'quiet-1', 'temp-new']) logins.set(device, await addCredential(configFile, '--role', 'device', '--site', SITE, '--device', device));
  await startHub();
});

afterAll(async () => {
  await disconnectSensors();
  await hub?.stop('SIGTERM');
  await fd?.stop();
});

describe('site config and profiles while cosafe runs', () => {
  it('raises "communication lost" for a device that goes silent, and clears it when it reports again', async () => {
    await publish('quiet-1', { t: 21 });
    const lost = await fd.waitFor((a) => a.body.data.device === 'quiet-1' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'active', 10_000);
    expect(lost.body.data.class).toBe('trouble');
    // The gateway's status says so too (a periodic report: the device list has not changed), for the owner's page.
    await waitUntil('the hub to show quiet-1 lost', async () => (await onHub()).some((d) => d.id === 'quiet-1' && d.commLost), 10_000, 100);
    await publish('quiet-1', { t: 21.5 });
    await fd.waitFor((a) => a.body.data.device === 'quiet-1' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'cleared', 10_000);
    await waitUntil('the hub to show quiet-1 heard again', async () => (await onHub()).some((d) => d.id === 'quiet-1' && !d.commLost), 10_000, 100);
  });

  it('picks up a new device from the edited config without a restart', async () => {
    writeConfig([...baseDevices, { id: 'temp-new', profile: 'mqtt-temperature-humidity', location: 'library' }]);
    await waitUntil('the reload', () => hub.output().includes('configuration reloaded'), 10_000);
    // Another device list: a full status report at once, which the hub shows.
    await waitUntil('the hub to list the new device', async () => (await onHub()).some((d) => d.id === 'temp-new'), 10_000, 100);
    await publish('temp-new', { temp: 19.5, hum: 50, bat: 80 });
    await waitUntil('the new device in the readings', async () => (await latest('temp-new')).some((r) => r.metric === 'temperature' && r.value === 19.5), 10_000, 100);
  });

  it('rejects an invalid change with all its errors and keeps running the old one', async () => {
    writeConfig([...baseDevices, { id: 'temp-new', profile: 'no-such-profile' }, { id: 'panel', profile: 'serial-conventional-panel-printer' }]);
    await waitUntil('the rejection', () => hub.output().includes('configuration change rejected'), 10_000);
    expect(hub.output()).toContain('gateway.devices[2].profile: unknown profile \\"no-such-profile\\"');
    expect(hub.output()).toContain('gateway.devices[3].port: required for a serial-lines device');
    await publish('temp-new', { temp: 18.25 });
    await waitUntil('the old device set still working', async () => (await latest('temp-new')).some((r) => r.value === 18.25), 10_000, 100);
  });

  it('remembers an active alarm across a crash: no second alarm, and the all-clear still arrives', async () => {
    writeConfig(baseDevices);
    await waitUntil('the reload', () => hub.output().split('configuration reloaded').length > 2, 10_000);
    const ts = Date.now();
    await publish('smoke-1', { smoke: true, ts });
    await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active', 10_000);
    await disconnectSensors();
    await hub.stop('SIGKILL');
    await startHub();
    await publish('smoke-1', { smoke: true, ts: ts + 1000 });
    await publish('smoke-1', { smoke: false, ts: ts + 2000 });
    await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'cleared', 10_000);
    // One alarm: one event id. Delivery is at least once, so a crash right after the
    // department's 2xx may resend it under the same webhook-id, which receivers discard.
    const activations = new Set(fd.alarms.filter((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active').map((a) => a.body.data.eventId));
    expect(activations.size).toBe(1);
  });
});
