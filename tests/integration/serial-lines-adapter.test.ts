import { afterEach, describe, expect, it } from 'vitest';
import { loadBuiltinProfiles } from '../../device-profiles/loader.js';
import { createSerialLinesAdapter } from '../../edge/adapters/serial-lines.js';
import type { DeviceBinding } from '../../edge/device-binding.js';
import { AdapterHarness } from '../helpers/adapter-harness.js';
import { waitUntil } from '../helpers/processes.js';
import { FirePanelSimulator, stamp } from '../simulators/fire-panel.js';
import { PtyPair } from '../simulators/pty-pair.js';

const profile = loadBuiltinProfiles().get('serial-conventional-panel-printer')!;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup() {
  const pty = await new PtyPair('panel').plug();
  cleanup.push(() => pty.unplug());
  const binding: DeviceBinding = { device: { id: 'panel-1', profile: profile.id, port: pty.devicePath }, profile };
  const harness = new AdapterHarness(createSerialLinesAdapter, [binding]);
  await harness.start();
  cleanup.push(() => harness.stop());
  await waitUntil('the gateway to open the port', () => harness.adapter.health().connected, 5000);
  const panel = await new FirePanelSimulator(pty.simPath).open();
  cleanup.push(() => panel.close());
  return { pty, harness, panel };
}

describe('serial lines from a fire alarm panel (socat pseudo-terminals)', () => {
  it('turns printed events into signals, also when a line arrives in pieces', async () => {
    const { harness, panel } = await setup();
    await panel.alarm(3, 'KITCHEN 1F');
    await panel.split('26/11/26 10:35:40 FIRE RESTORE    ZONE 03 KITCHEN 1F', 4);
    await waitUntil('alarm and restore', () => harness.signals().length === 2, 5000);
    expect(harness.signals().map((s) => [s.key, s.class, s.state])).toEqual([
      ['fire-zone-03', 'fire', 'active'],
      ['fire-zone-03', 'fire', 'cleared'],
    ]);
  });

  it("dates an event by the panel's own clock, as printed on its line", async () => {
    const { harness, panel } = await setup();
    const printedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000); // a line the panel printed 10 min ago (its buffer)
    await panel.line(`${stamp(printedAt)} FIRE ALARM      ZONE 04 ARCHIVE`);
    await waitUntil('the alarm', () => harness.signals().length === 1, 5000);
    expect(harness.signals()[0]).toMatchObject({ key: 'fire-zone-04', state: 'active', time: printedAt.getTime() });
    expect(harness.received[0]!.outcome.errors).toEqual([]);
  });

  it('counts noise, overlong garbage and unknown lines, and keeps reading what follows', async () => {
    const { harness, panel } = await setup();
    await panel.write(Buffer.from([0x00, 0xff, 0xfe, 0x13, 0x81]));
    await panel.write(Buffer.alloc(400, 0x7e)); // a wrong baud rate: one endless "line"
    await panel.line('');
    await panel.line('PRINTER PAPER LOW');
    await panel.trouble(5);
    await waitUntil('the trouble after the garbage', () => harness.signals().some((s) => s.key === 'trouble-zone-05'), 5000);
    const errors = harness.adapter.health().errors;
    expect(errors.noiseBytes).toBeGreaterThanOrEqual(5);
    expect(errors.overlong).toBe(1);
    expect(errors.unrecognized).toBe(1);
    // The last line no rule knew is shown, so a person can write the rule it needs.
    expect(harness.adapter.health().ports?.[0]?.lastUnrecognized).toMatchObject({ line: 'PRINTER PAPER LOW' });
  });

  it('survives the cable being unplugged and plugged back in', async () => {
    const setupDone = await setup();
    const { pty, harness } = setupDone;
    let panel = setupDone.panel;
    await panel.alarm(1);
    await waitUntil('the first alarm', () => harness.signals().length === 1, 5000);
    await panel.close();
    await pty.unplug();
    await waitUntil('the adapter to notice', () => !harness.adapter.health().connected, 5000);
    expect(harness.adapter.health().ports?.[0]).toMatchObject({ state: 'backoff' });
    // It stays unplugged a while: several reopen attempts fail, each counted.
    await waitUntil('two failed reopen attempts', () => (harness.adapter.health().errors.open ?? 0) >= 2, 15_000);
    await pty.plug();
    await waitUntil('the adapter to reopen the port', () => harness.adapter.health().connected, 15_000);
    panel = await new FirePanelSimulator(pty.simPath).open();
    cleanup.push(() => panel.close());
    await panel.restore(1);
    await waitUntil('events after the replug', () => harness.signals().length === 2, 5000);
    expect(harness.signals()[1]).toMatchObject({ key: 'fire-zone-01', state: 'cleared' });
    expect(harness.adapter.health().errors.lost).toBeGreaterThanOrEqual(1);
  });
});
