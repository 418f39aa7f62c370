import { afterEach, describe, expect, it } from 'vitest';
import { loadBuiltinProfiles } from '../../device-profiles/loader.js';
import { createModbusRtuAdapter } from '../../edge/adapters/modbus-rtu.js';
import type { DeviceBinding } from '../../edge/device-binding.js';
import { AdapterHarness } from '../helpers/adapter-harness.js';
import { waitUntil } from '../helpers/processes.js';
import { ModbusSlaveSimulator } from '../simulators/modbus-slave.js';
import { PtyPair } from '../simulators/pty-pair.js';

const profiles = loadBuiltinProfiles();
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** The three built-in Modbus devices on one RS-485 bus, polled fast for the test. */
async function bus() {
  const pty = await new PtyPair('rs485').plug();
  cleanup.push(() => pty.unplug());
  const slaves = await new ModbusSlaveSimulator(pty.simPath).withBuiltinDevices().open();
  cleanup.push(() => slaves.close());
  const device = (id: string, profileId: string, unitId: number): DeviceBinding => {
    const p = profiles.get(profileId)!;
    if (p.transport !== 'modbus-rtu') throw new Error('not modbus');
    return { device: { id, profile: profileId, port: pty.devicePath, unitId }, profile: { ...p, modbus: { ...p.modbus, pollIntervalMs: 200, timeoutMs: 150 } }, unitId };
  };
  const harness = new AdapterHarness(createModbusRtuAdapter, [
    device('gas-1', 'modbus-combustible-gas-detector', 1),
    device('co-1', 'modbus-co-detector', 2),
    device('pressure-1', 'modbus-sprinkler-pressure-transmitter', 3),
  ]);
  await harness.start();
  cleanup.push(() => harness.stop());
  return { pty, slaves, harness };
}

const readingsOf = (h: AdapterHarness, device: string, since = 0) => h.received.filter((r) => r.device === device && r.at >= since && r.outcome.values.length > 0);

describe('Modbus RTU master on one bus (socat pseudo-terminals)', () => {
  it('reads every unit on the bus with its profile', async () => {
    const { harness, slaves } = await bus();
    slaves.setGas(1, 23.5);
    await waitUntil('readings of all three units', () => ['gas-1', 'co-1', 'pressure-1'].every((d) => readingsOf(harness, d).length > 0), 5000);
    expect(harness.values('gas-1')).toContainEqual(expect.objectContaining({ metric: 'combustible_gas', value: 23.5, quality: 'good' }));
    expect(harness.values('co-1')).toContainEqual(expect.objectContaining({ metric: 'carbon_monoxide', value: 3 }));
    expect(harness.values('pressure-1')).toContainEqual(expect.objectContaining({ metric: 'water_pressure', value: 7.25 }));
  });

  it('backs off a silent unit while the two others keep reporting on time', async () => {
    const { harness, slaves } = await bus();
    await waitUntil('first readings', () => readingsOf(harness, 'pressure-1').length > 0 && readingsOf(harness, 'gas-1').length > 0, 5000);
    slaves.silence(2);
    await waitUntil('the silent unit in backoff', () => harness.adapter.health().ports?.find((p) => p.device === 'co-1')?.state === 'backoff', 5000);
    // Counted in polls, not seconds: whatever the load on the machine, a unit in
    // exponential backoff is tried less and less often while the others are
    // polled at their rate (every 200 ms here). 20 polls of each answering unit
    // take 4 s on an idle machine, in which the silent one is tried about 5 times.
    const co = () => harness.adapter.health().ports?.find((p) => p.device === 'co-1');
    const from = harness.received.length;
    const timeoutsBefore = co()?.errors.timeout ?? 0;
    const since = (device: string) => harness.received.slice(from).filter((r) => r.device === device && r.outcome.values.length > 0).length;
    await waitUntil('20 polls of each answering unit', () => since('gas-1') >= 20 && since('pressure-1') >= 20, 30_000);
    expect(since('co-1')).toBe(0);
    const tried = (co()?.errors.timeout ?? 0) - timeoutsBefore;
    expect(tried).toBeGreaterThanOrEqual(1);
    // Backed off: fewer than half the attempts it would get at its normal rate.
    expect(tried).toBeLessThan(10);
    slaves.silence(2, false);
    await waitUntil('the unit back at its normal rate', () => harness.adapter.health().ports?.find((p) => p.device === 'co-1')?.state === 'ok', 35_000);
  });

  it('counts CRC errors per unit and takes no value from a corrupted frame', async () => {
    const { harness, slaves } = await bus();
    slaves.corruptCrc(3);
    slaves.setGas(1, 1.5);
    await waitUntil('CRC errors on unit 3', () => (harness.adapter.health().ports?.find((p) => p.device === 'pressure-1')?.errors.crc ?? 0) >= 2, 5000);
    expect(readingsOf(harness, 'pressure-1')).toHaveLength(0);
    expect(harness.adapter.health().ports?.find((p) => p.device === 'gas-1')?.errors.crc).toBeUndefined();
    expect(harness.values('gas-1')).toContainEqual(expect.objectContaining({ value: 1.5 }));
  });

  it('survives the RS-485 adapter being unplugged and plugged back in', async () => {
    const { pty, harness } = await bus();
    await waitUntil('first readings', () => readingsOf(harness, 'gas-1').length > 0, 5000);
    await pty.unplug();
    await waitUntil('the port lost', () => !harness.adapter.health().connected, 5000);
    await pty.plug();
    const slaves = await new ModbusSlaveSimulator(pty.simPath).withBuiltinDevices().open();
    cleanup.push(() => slaves.close());
    const since = Date.now();
    await waitUntil('readings after the replug', () => readingsOf(harness, 'gas-1', since).length > 0, 15_000);
  });
});
