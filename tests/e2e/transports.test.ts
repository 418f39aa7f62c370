import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { BUILTIN_PROFILE_DIR } from '../../device-profiles/loader.js';
import { asOperator, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';
import { FirePanelSimulator } from '../simulators/fire-panel.js';
import { ModbusSlaveSimulator } from '../simulators/modbus-slave.js';
import { PtyPair } from '../simulators/pty-pair.js';

/**
 * A site wired as a building owner would: a fire panel on a serial port, a gas
 * detector and a sprinkler pressure transmitter on one RS-485 bus, `cosafe run`
 * in its own process, and the fire department at the other end.
 */
const secret = `whsec_${randomBytes(32).toString('base64')}`;
let fd: FireDepartmentReceiver;
let hub: Spawned;
/** The hub's data directory: its operator token, for the readings. */
let stateDir: string;
let panelLine: PtyPair;
let bus: PtyPair;
let panel: FirePanelSimulator;
let slaves: ModbusSlaveSimulator;
let api: string;

beforeAll(async () => {
  fd = await new FireDepartmentReceiver({ secret }).start();
  panelLine = await new PtyPair('panel').plug();
  bus = await new PtyPair('rs485').plug();
  slaves = await new ModbusSlaveSimulator(bus.simPath).withBuiltinDevices().open();
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-transports-'));
  // The built-in transmitter's profile, polled faster and supervised tighter, so the test is short.
  const profileDir = join(dir, 'profiles');
  mkdirSync(profileDir);
  const pressure = parse(readFileSync(join(BUILTIN_PROFILE_DIR, 'modbus-sprinkler-pressure-transmitter.yaml'), 'utf8'));
  pressure.modbus = { ...pressure.modbus, pollIntervalMs: 200, timeoutMs: 100 };
  pressure.supervision = { reportIntervalS: 0.2, silentAfterS: 2 };
  writeFileSync(join(profileDir, 'pressure.yaml'), stringify(pressure));
  api = `http://127.0.0.1:${await freePort()}`;
  const configFile = join(dir, 'site.yaml');
  stateDir = join(dir, 'state');
  writeFileSync(
    configFile,
    stringify({
      dataDir: stateDir,
      broker: { host: '127.0.0.1', port: await freePort() },
      http: { port: Number(new URL(api).port) },
      gateway: {
        id: 'gw-mall',
        site: 'mall-7',
        profileDir,
        batch: { maxDelayMs: 20 },
        devices: [
          { id: 'panel', profile: 'serial-conventional-panel-printer', port: panelLine.devicePath, location: 'fire control room' },
          { id: 'gas-1', profile: 'modbus-combustible-gas-detector', port: bus.devicePath, unitId: 1, location: 'food court kitchen' },
          { id: 'riser-1', profile: 'modbus-sprinkler-pressure-transmitter', port: bus.devicePath, unitId: 3, location: 'riser A' },
        ],
      },
      cloudSync: { fireDepartments: [{ id: 'fd', url: fd.url, secret, classes: ['fire', 'gas', 'trouble'] }] },
    }),
  );
  hub = startCosafe(['run', '--config', configFile]);
  await waitUntil('the hub to be healthy', async () => (await fetch(`${api}/health`)).ok, 60_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n${hub.output()}`);
  });
  panel = await new FirePanelSimulator(panelLine.simPath).open();
});

afterAll(async () => {
  await panel?.close();
  await slaves?.close();
  await hub?.stop('SIGTERM');
  await panelLine?.unplug();
  await bus?.unplug();
  await fd?.stop();
});

const latest = async (device: string) => ((await (await fetch(`${api}/api/v1/readings/latest?device=${device}`, asOperator(stateDir))).json()) as { readings: { metric: string; value: number; time: number }[] }).readings;

describe('serial panel and Modbus bus through cosafe run', () => {
  it("sends the panel's fire alarm to the fire department with the panel's own words", async () => {
    await panel.alarm(4, 'CINEMA EXIT');
    const alarm = await fd.waitFor((a) => a.body.data.device === 'panel' && a.body.data.state === 'active', 10_000);
    expect(alarm.body.data).toMatchObject({ class: 'fire', condition: 'fire-zone-04', location: 'fire control room' });
    expect(alarm.body.data.text).toContain('FIRE ALARM      ZONE 04 CINEMA EXIT');
  });

  it('raises gas from the detector on the bus, after its on-delay', async () => {
    slaves.setGas(1, 35);
    const gas = await fd.waitFor((a) => a.body.data.device === 'gas-1' && a.body.data.class === 'gas' && a.body.data.state === 'active', 15_000);
    expect(gas.body.data.value).toBe(35);
  });

  it('reports a silent unit as trouble while the other unit keeps reporting', async () => {
    slaves.silence(3);
    const lost = await fd.waitFor((a) => a.body.data.device === 'riser-1' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'active', 15_000);
    expect(lost.body.data.class).toBe('trouble');
    const before = (await latest('gas-1')).find((r) => r.metric === 'combustible_gas')!.time;
    await waitUntil('fresh gas readings', async () => (await latest('gas-1')).find((r) => r.metric === 'combustible_gas')!.time > before + 1000, 10_000, 200);
    const status = await runCosafe(['status', '--api', api, '--data-dir', stateDir]);
    expect(status.stdout).toMatch(/riser-1\s+modbus-sprinkler-pressure-transmitter\s+\S+ s ago\s+COMMUNICATION LOST/);
    expect(status.stdout).toMatch(/rs485-gateway#3\s+riser-1\s+backoff/);
    slaves.silence(3, false);
    await fd.waitFor((a) => a.body.data.device === 'riser-1' && a.body.data.condition === 'comm-lost' && a.body.data.state === 'cleared', 40_000);
  });
});
