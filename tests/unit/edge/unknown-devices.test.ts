import { describe, expect, it } from 'vitest';
import { GatewayHealth } from '../../../broker/contract/index.js';
import { readAvailability } from '../../../edge/adapters/mqtt-availability.js';
import { MAX_UNKNOWN_DEVICES, UnknownDevices } from '../../../edge/unknown-devices.js';

describe('devices heard but not configured', () => {
  it('keeps the most recently heard, bounded, newest first, with a count each', () => {
    const u = new UnknownDevices();
    for (let i = 0; i < 100; i++) u.heard({ topic: `z2m/made-up-${i}`, bridge: 'zigbee', name: `made-up-${i}` }, i);
    u.heard({ topic: 'z2m/made-up-85', bridge: 'zigbee', name: 'made-up-85' }, 200);
    const list = u.list();
    expect(list).toHaveLength(MAX_UNKNOWN_DEVICES);
    expect(list[0]).toMatchObject({ topic: 'z2m/made-up-85', messages: 2, firstHeard: 85, lastHeard: 200 });
    expect(list.at(-1)?.topic).toBe('z2m/made-up-80');
  });

  it('keeps only what the status message may carry: no terminal escapes, an id only if it is one', () => {
    const u = new UnknownDevices();
    u.heard({ topic: 'cosafe/v1/sites/s/devices/bad id/up', device: 'bad id' }, 1);
    u.heard({ topic: 'vendor/\u001b[2Jx', name: 'x\u0007' }, 2);
    const unknownDevices = u.list();
    expect(unknownDevices.map((d) => [d.topic, d.device, d.name])).toEqual([
      ['vendor/ [2Jx', undefined, 'x '],
      ['cosafe/v1/sites/s/devices/bad id/up', undefined, undefined],
    ]);
    expect(GatewayHealth.safeParse({ at: 1, adapters: [], devices: [], activeConditions: [], unknownDevices }).success).toBe(true);
  });
});

describe("a bridge's availability payloads", () => {
  it.each([
    ['online', 'online'],
    ['offline', 'offline'],
    ['{"state":"online"}', 'online'],
    [' {"state": "offline"} ', 'offline'],
    ['{"state":"ON"}', undefined],
    ['true', undefined],
    ['null', undefined],
    ['', undefined],
  ] as const)('%j reads as %s', (payload, state) => {
    expect(readAvailability(Buffer.from(payload))).toBe(state);
  });
});
