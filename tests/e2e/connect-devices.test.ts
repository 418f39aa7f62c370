import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { topics } from '../../broker/contract/index.js';
import { addCredential, asOperator, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';
import { FirePanelSimulator, stamp } from '../simulators/fire-panel.js';
import { PtyPair } from '../simulators/pty-pair.js';

/**
 * Connecting devices that are not built in, as a building owner does it with
 * `cosafe run`: a zigbee2mqtt bridge and its devices, a device on a topic of its
 * own whose credential comes later, devices nobody configured, and a panel
 * printing a line its profile does not know. Each MQTT client is mosquitto_pub.
 */
const SITE = 'depot-7';
const PREFIX = 'z2m-depot';
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-connect-'));
const configFile = join(dir, 'site.yaml');

let fd: FireDepartmentReceiver;
let hub: Spawned;
let panelLine: PtyPair;
let panel: FirePanelSimulator;
let bridge: { username: string; password: string };
let mqttPort: number;
let api: string;

const pub = async (who: { username: string; password: string }, topic: string, payload: string) => {
  const r = await mosquittoPub(['-p', String(mqttPort), ...login(who), '-t', topic, '-q', '1', '-m', payload]);
  expect(r.code, r.stderr).toBe(0);
};
const latest = async (device: string) => ((await (await fetch(`${api}/api/v1/readings/latest?device=${device}`, asOperator(join(dir, 'state')))).json()) as { readings: { metric: string; value: number; unit: string }[] }).readings;
const status = async () => (await runCosafe(['status', '--api', api, '--data-dir', join(dir, 'state')])).stdout;

beforeAll(async () => {
  fd = await new FireDepartmentReceiver({ secret }).start();
  mqttPort = await freePort();
  api = `http://127.0.0.1:${await freePort()}`;
  panelLine = await new PtyPair('panel').plug();
  writeFileSync(
    configFile,
    stringify({
      dataDir: join(dir, 'state'),
      broker: { host: '127.0.0.1', port: mqttPort },
      http: { port: Number(new URL(api).port) },
      gateway: {
        id: 'gw-depot',
        site: SITE,
        batch: { maxDelayMs: 20 },
        bridges: [{ id: 'zigbee', prefix: PREFIX }],
        devices: [
          { id: 'store-smoke', profile: 'zigbee2mqtt-smoke-detector', bridge: 'zigbee', location: 'cold store' },
          { id: 'hall-smoke', profile: 'zigbee2mqtt-smoke-detector', bridge: 'zigbee', name: 'Hall smoke 1', location: 'hall' },
          { id: 'door-1', profile: 'mqtt-exit-door-monitor', topic: 'vendor-doors/door-1', location: 'exit A' },
          { id: 'panel', profile: 'serial-conventional-panel-printer', port: panelLine.devicePath, location: 'control room' },
        ],
      },
      cloudSync: { fireDepartments: [{ id: 'fd', url: fd.url, secret, classes: ['fire', 'trouble', 'supervisory'] }] },
    }),
  );
  bridge = await addCredential(configFile, '--role', 'bridge', '--site', SITE, '--prefix', PREFIX);
  hub = startCosafe(['run', '--config', configFile]);
  await waitUntil('the hub to be healthy', async () => (await fetch(`${api}/health`)).ok, 20_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n${hub.output()}`);
  });
  await waitUntil('the gateway to read the bridge', async () => (await status()).includes(`${PREFIX}/#  `) && !(await status()).includes(`${PREFIX}/#  refused`), 15_000, 200);
  panel = await new FirePanelSimulator(panelLine.simPath).open();
});

afterAll(async () => {
  await panel?.close();
  await hub?.stop('SIGTERM');
  await panelLine?.unplug();
  await fd?.stop();
});

describe('a zigbee2mqtt bridge, with one credential for all its devices', () => {
  it("stores its devices' readings, a metric beyond the vocabulary included, and sends their alarms", async () => {
    await pub(bridge, `${PREFIX}/bridge/state`, '{"state":"online"}');
    await pub(bridge, `${PREFIX}/store-smoke`, '{"smoke":false,"tamper":false,"battery":96,"linkquality":120}');
    await waitUntil('the readings', async () => (await latest('store-smoke')).some((r) => r.metric === 'linkquality'), 10_000, 100);
    expect((await latest('store-smoke')).find((r) => r.metric === 'linkquality')).toMatchObject({ value: 120, unit: '1' });
    // A friendly name with spaces maps to its device by the configured name.
    await pub(bridge, `${PREFIX}/Hall smoke 1`, '{"smoke":true,"battery":90,"linkquality":80}');
    const alarm = await fd.waitFor((a) => a.body.data.device === 'hall-smoke' && a.body.data.class === 'fire' && a.body.data.state === 'active', 10_000);
    expect(alarm.body.data).toMatchObject({ site: SITE, location: 'hall' });
  });

  it("raises communication lost when zigbee2mqtt reports a device offline, and clears it when it is back", async () => {
    await pub(bridge, `${PREFIX}/store-smoke/availability`, '{"state":"offline"}');
    const lost = await fd.waitFor((a) => a.body.data.device === 'store-smoke' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'active', 10_000);
    expect(lost.body.data.class).toBe('trouble');
    await pub(bridge, `${PREFIX}/store-smoke/availability`, 'online'); // the legacy plain payload
    await fd.waitFor((a) => a.body.data.device === 'store-smoke' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'cleared', 10_000);
  });

  it('keeps the bridge to its prefix: a publish elsewhere is refused and counted', async () => {
    const r = await mosquittoPub(['-p', String(mqttPort), ...login(bridge), '-t', topics.deviceUplink(SITE, 'store-smoke'), '-q', '1', '-m', '{"smoke":true}']);
    expect(r.code).not.toBe(0);
    expect(await (await fetch(`${api}/metrics`, asOperator(join(dir, 'state')))).text()).toMatch(/cosafe_broker_denied_total\{action="publish",role="bridge"\} [1-9]/);
  });
});

describe('devices heard but not configured', () => {
  it('are counted and listed by cosafe status with their topic and the config entry to add', async () => {
    const stranger = await addCredential(configFile, '--role', 'device', '--site', SITE, '--device', 'temp-9');
    await pub(stranger, topics.deviceUplink(SITE, 'temp-9'), '{"temp": 4}');
    await pub(bridge, `${PREFIX}/Freezer probe`, '{"temperature": -18, "linkquality": 60}');
    await pub(bridge, `${PREFIX}/Freezer probe/availability`, '{"state":"online"}');
    const stranger9 = new RegExp(`${topics.deviceUplink(SITE, 'temp-9')}\\s+1\\s+.*- \\{ id: temp-9, profile: <profile> \\}`);
    const freezer = /z2m-depot\/Freezer probe\s+2\s+.*- \{ id: Freezer-probe, profile: <profile>, bridge: zigbee, name: "Freezer probe" \}/;
    // Until the status the gateway reports has counted both of the bridge's messages (it may show the first alone).
    let out = '';
    await waitUntil('both in cosafe status, each message counted', async () => stranger9.test((out = await status())) && freezer.test(out), 15_000, 300).catch((err: Error) => {
      throw new Error(`${err.message}; cosafe status last said:\n${out}`);
    });
    expect(out).toContain('heard but not configured');
    expect(await (await fetch(`${api}/metrics`, asOperator(join(dir, 'state')))).text()).toMatch(/cosafe_edge_unknown_device_messages_total\{via="bridge"\} 2/);
    expect(hub.output()).toContain('COSAFE_ERR_DEVICE_UNKNOWN');
  });
});

describe('a device on a topic of its own, whose credential comes after the gateway started', () => {
  it('says which credential is missing, then reads the device once it is issued, without a reload', async () => {
    expect(await status()).toMatch(/vendor-doors\/door-1\s+refused: no credential/);
    expect(hub.output()).toContain(`cosafe credentials add --role device --site ${SITE} --device door-1 --topic vendor-doors/door-1`);
    const door = await addCredential(configFile, '--role', 'device', '--site', SITE, '--device', 'door-1', '--topic', 'vendor-doors/door-1');
    // The device reports every second, as it would; the gateway retries its refused subscription by itself.
    await waitUntil(
      'a reading from the door',
      async () => {
        await pub(door, 'vendor-doors/door-1', '{"contact": false, "tamper": false, "battery": 91}');
        return (await latest('door-1')).some((r) => r.metric === 'door_open');
      },
      45_000,
      1000,
    );
    expect(hub.output()).not.toContain('configuration reloaded');
  });
});

describe('a panel line the profile does not know', () => {
  it('is counted in cosafe status, with the last one seen', async () => {
    await panel.line(`${stamp()} PRINTER PAPER LOW`);
    await waitUntil('the line in cosafe status', async () => (await status()).includes('PRINTER PAPER LOW'), 15_000, 300);
    expect(await status()).toMatch(/panel: 1 unrecognized line\(s\), the last \d+ s ago: ".* PRINTER PAPER LOW"/);
  });
});
