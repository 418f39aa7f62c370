import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { topics } from '../../broker/contract/index.js';
import { addCredential, asOperator, startCosafe } from '../helpers/cosafe-cli.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * The whole flow as a user runs it: `cosafe run` in its own process with a real
 * InfluxDB; a sensor (mqtt.js) publishes its own JSON to the hub; the readings
 * are read back from InfluxDB with InfluxQL; the smoke alarm arrives at the fire
 * department as a webhook whose signature `standardwebhooks` verifies.
 */
const SITE = 'bakery-12';
const secret = `whsec_${randomBytes(32).toString('base64')}`;

let influx: InfluxServer;
let fd: FireDepartmentReceiver;
let hub: Spawned;
let sensor: MqttClient;
let smoke: MqttClient;
let stray: MqttClient;
let api: string;
/** The hub's data directory: its operator token, for /metrics and the readings. */
let stateDir: string;

beforeAll(async () => {
  influx = await startInfluxDB();
  fd = await new FireDepartmentReceiver({ secret, failFirst: 1 }).start();
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-e2e-'));
  const configFile = join(dir, 'cosafe.yaml');
  stateDir = join(dir, 'state');
  writeFileSync(
    configFile,
    stringify({
      dataDir: stateDir,
      broker: { host: '127.0.0.1', port: mqttPort },
      http: { port: httpPort },
      gateway: {
        id: 'gw-e2e',
        site: SITE,
        batch: { maxDelayMs: 50 },
        devices: [
          { id: 'temp-1', profile: 'mqtt-temperature-humidity', location: 'oven room' },
          { id: 'smoke-1', profile: 'mqtt-smoke-detector', location: 'oven room' },
        ],
      },
      cloudSync: {
        influx: { url: influx.url, database: 'e2e' },
        fireDepartments: [{ id: 'fd-north', url: fd.url, secret }],
      },
    }),
  );
  api = `http://127.0.0.1:${httpPort}`;
  // Each device logs in with its own credential; the broker admits nobody anonymous on TCP.
  const [temp1, smoke1, gateway] = await Promise.all([
    addCredential(configFile, '--role', 'device', '--site', SITE, '--device', 'temp-1'),
    addCredential(configFile, '--role', 'device', '--site', SITE, '--device', 'smoke-1'),
    addCredential(configFile, '--role', 'gateway', '--site', SITE, '--gateway', 'gw-e2e'),
  ]);
  hub = startCosafe(['run', '--config', configFile]);
  await waitUntil('the hub to be healthy', async () => (await fetch(`${api}/health`)).ok, 60_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n--- cosafe output ---\n${hub.output()}`);
  });
  sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'e2e-sensor', ...temp1 });
  smoke = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'e2e-smoke', ...smoke1 });
  // A stray publisher with the site's gateway credential (say, a gateway of another version).
  stray = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'e2e-stray-gateway', ...gateway });
});

afterAll(async () => {
  await sensor?.endAsync();
  await smoke?.endAsync();
  await stray?.endAsync();
  const code = await hub?.stop('SIGTERM');
  await fd?.stop();
  await influx?.stop();
  expect(code, hub?.output()).toBe(0);
});

describe('cosafe run: sensor to InfluxDB, alarm to the fire department', () => {
  it('stores what a sensor publishes, queryable with InfluxQL', async () => {
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 20; i++) {
      await sensor.publishAsync(topics.deviceUplink(SITE, 'temp-1'), JSON.stringify({ temp: 20 + i / 10, hum: 40, bat: 90, ts: t0 + i * 1000 }), { qos: 1 });
    }
    await waitUntil(
      'the 20 temperatures in InfluxDB',
      async () => ((await influx.query(`SELECT count(value) FROM reading WHERE device = 'temp-1' AND metric = 'temperature'`, 'e2e'))[0]?.values[0]?.[1] ?? 0) === 20,
      10_000,
      100,
    );
    const [series] = await influx.query(`SELECT value, quality FROM reading WHERE device = 'temp-1' AND metric = 'temperature' AND site = '${SITE}' ORDER BY time ASC LIMIT 3`, 'e2e');
    expect(series?.values).toEqual([
      [t0, 20, 'good'],
      [t0 + 1000, 20.1, 'good'],
      [t0 + 2000, 20.2, 'good'],
    ]);
    // The same readings over the hub's HTTP API.
    const latest = (await (await fetch(`${api}/api/v1/readings/latest?device=temp-1`, asOperator(stateDir))).json()) as { readings: { metric: string; value: number }[] };
    expect(latest.readings.find((r) => r.metric === 'temperature')?.value).toBe(21.9);
  });

  it('sends a smoke alarm to the fire department, signed, and retried after a failure', async () => {
    const ts = Date.now();
    await smoke.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, obscuration: 9.5, battery: 88, ts }), { qos: 1 });
    const alarm = await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active', 10_000);
    expect(fd.failed).toBe(1); // the first attempt got a 503 and was retried
    expect(alarm.body.type).toBe('alarm.fire.active');
    expect(alarm.body.data).toMatchObject({ site: SITE, device: 'smoke-1', class: 'fire', state: 'active', time: ts, location: 'oven room' });
    expect(alarm.headers['webhook-id']).toBe(alarm.body.data.eventId);
    expect(fd.rejected).toBe(0);

    await smoke.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: false, ts: ts + 5000 }), { qos: 1 });
    const cleared = await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'cleared', 10_000);
    expect(cleared.body.data.eventId).not.toBe(alarm.body.data.eventId);
  });

  it('survives garbage from a device, counts it, and keeps the other data flowing', async () => {
    await sensor.publishAsync(topics.deviceUplink(SITE, 'temp-1'), '{"temp": 21, "hum": oops', { qos: 1 });
    await sensor.publishAsync(topics.deviceUplink(SITE, 'temp-1'), Buffer.from([0xff, 0x00, 0x13]), { qos: 1 });
    await stray.publishAsync(topics.readings(SITE, 'gw-e2e'), '{"v":1,"not":"a batch"}', { qos: 1 });
    const ts = Date.now();
    await sensor.publishAsync(topics.deviceUplink(SITE, 'temp-1'), JSON.stringify({ temp: 23.5, ts }), { qos: 1 });
    await waitUntil(
      'the reading after the garbage in InfluxDB',
      async () => (await influx.query(`SELECT value FROM reading WHERE device = 'temp-1' AND time = ${ts}ms`, 'e2e')).length === 1,
      10_000,
      100,
    );
    const metrics = await (await fetch(`${api}/metrics`, asOperator(stateDir))).text();
    expect(metrics).toMatch(/cosafe_edge_decode_errors_total\{device="temp-1"\} 2/);
    expect(metrics).toMatch(/cosafe_sync_invalid_messages_total 1/);
  });

  it('refuses a batch whose metric carries a second line of line protocol, stores nothing of it, and stores the batches after it', async () => {
    const invalidBefore = await metricValue('cosafe_sync_invalid_messages_total');
    const ts = Date.now();
    const reading = { device: 'temp-1', value: 21, unit: 'Cel', time: ts, quality: 'good', profile: 'mqtt-temperature-humidity' };
    // The payload of issue 9: InfluxDB splits a request on "\n", so without the
    // contract's bounds the second line became a `reading` of its own, with no
    // site or device, which /api/v1/readings/latest then returned.
    const injected = { v: 1, gateway: 'gw-e2e', site: SITE, boot: 'stray-boot', seq: 1, sentAt: ts, readings: [{ ...reading, metric: 'temperature\nreading' }] };
    const valid = { v: 1, gateway: 'gw-e2e', site: SITE, boot: 'stray-boot', seq: 2, sentAt: ts, readings: [{ ...reading, device: 'temp-after', metric: 'temperature', value: 22.5 }] };
    await stray.publishAsync(topics.readings(SITE, 'gw-e2e'), JSON.stringify(injected), { qos: 1 });
    await stray.publishAsync(topics.readings(SITE, 'gw-e2e'), JSON.stringify(valid), { qos: 1 });
    // Cloud-sync handles one gateway's messages in order: once the second batch is stored, the first was dealt with.
    await waitUntil(
      'the batch after the injection in InfluxDB',
      async () => (await influx.query(`SELECT value FROM reading WHERE device = 'temp-after'`, 'e2e'))[0]?.values.length === 1,
      10_000,
      100,
    );
    // Nothing of the injected batch is in InfluxDB: no point at its time but the valid one, no reading without a site.
    const atTs = await influx.query(`SELECT value, device FROM reading WHERE time = ${ts}ms`, 'e2e');
    expect(atTs[0]?.values.map((row) => row[2])).toEqual(['temp-after']);
    expect(await influx.query(`SELECT count(value) FROM reading WHERE site = ''`, 'e2e')).toEqual([]);
    const latest = (await (await fetch(`${api}/api/v1/readings/latest`, asOperator(stateDir))).json()) as { readings: { site: string; device: string; metric: string }[] };
    expect(latest.readings.filter((r) => r.site !== SITE || r.device === '' || r.metric.includes('\n'))).toEqual([]);
    expect(latest.readings.find((r) => r.device === 'temp-after')).toMatchObject({ site: SITE, metric: 'temperature', value: 22.5 });
    expect(await metricValue('cosafe_sync_invalid_messages_total')).toBe(invalidBefore + 1);
  });

  it('stamps a reading whose device time is absurd with the receive time, quality uncertain, counts it, and still raises its alarm', async () => {
    const before = Date.now();
    // Issue 9: a time of 9e15 passed the gateway and InfluxDB then rejected it.
    await sensor.publishAsync(topics.deviceUplink(SITE, 'temp-1'), JSON.stringify({ temp: 30.5, hum: 41, bat: 90, ts: 9e15 }), { qos: 1 });
    await waitUntil(
      'the reading with the absurd time in InfluxDB',
      async () => (await influx.query(`SELECT value FROM reading WHERE device = 'temp-1' AND metric = 'temperature' AND value = 30.5`, 'e2e')).length === 1,
      10_000,
      100,
    );
    const after = Date.now();
    const [series] = await influx.query(`SELECT value, quality FROM reading WHERE device = 'temp-1' AND metric = 'temperature' AND value = 30.5`, 'e2e');
    const [time, , quality] = series!.values[0]! as [number, number, string];
    expect(quality).toBe('uncertain');
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
    // All three values of that payload (temperature, humidity, battery) were counted for the device.
    expect(await metricValue('cosafe_edge_device_time_rejected_total{device="temp-1"}')).toBe(3);

    // A smoke detector with a wrong clock still reaches the fire department, at the time the gateway heard it.
    await smoke.publishAsync(topics.deviceUplink(SITE, 'smoke-1'), JSON.stringify({ smoke: true, battery: 88, ts: 9e15 }), { qos: 1 });
    const alarm = await fd.waitFor((a) => a.body.data.device === 'smoke-1' && a.body.data.state === 'active' && Number(a.body.data.time) >= before, 10_000);
    expect(alarm.body.data.time).toBeLessThanOrEqual(Date.now());
  });
});

async function metricValue(name: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`, asOperator(stateDir))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
