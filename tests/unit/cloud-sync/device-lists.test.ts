import { describe, expect, it } from 'vitest';
import type { GatewayHealth, GatewayStatus } from '../../../broker/contract/index.js';
import { DeviceLists } from '../../../cloud-sync/device-lists.js';

const status = (health?: Partial<GatewayHealth>): GatewayStatus => ({
  v: 1,
  site: 'bakery-12',
  gateway: 'gw-1',
  state: health ? 'online' : 'offline',
  boot: 'b1',
  since: 1,
  ...(health ? { health: { at: 10_000, adapters: [], activeConditions: [], ...health } } : {}),
});
const devices = [
  { id: 'smoke-oven', profile: 'mqtt-smoke-detector', transport: 'mqtt', lastSeen: 9_000, commLost: false, location: 'bakehouse' },
  { id: 'th-1', profile: 'mqtt-temperature-humidity', transport: 'mqtt', lastSeen: null, commLost: true },
];
const LIST = '0123456789abcdef';

describe('device lists: a periodic status completed with the last full one', () => {
  it('gives each device the time the periodic status says, the rest as the full one said', () => {
    const lists = new DeviceLists();
    lists.complete(status({ devices, deviceList: LIST }));
    const { status: s, paired } = lists.complete(status({ at: 20_000, deviceList: LIST, lastSeenAgo: [500, null] }));
    expect(paired).toBe(true);
    expect(s.health!.devices).toEqual([
      { ...devices[0], lastSeen: 19_500 },
      { ...devices[1], lastSeen: null },
    ]);
    expect(s.health).not.toHaveProperty('lastSeenAgo');
    expect(s.health).not.toHaveProperty('devicesLost');
  });

  it('takes which devices are lost from the periodic status, and keeps them as they were when it does not say', () => {
    const lists = new DeviceLists();
    lists.complete(status({ devices, deviceList: LIST }));
    const lost = (health: Partial<GatewayHealth>) => lists.complete(status({ deviceList: LIST, lastSeenAgo: [1, 1], ...health })).status.health!.devices!.map((d) => d.commLost);
    expect(lost({ devicesLost: [0] })).toEqual([true, false]);
    expect(lost({})).toEqual([true, false]);
    expect(lost({ devicesLost: [] })).toEqual([false, false]);
  });

  it('keeps the devices as last known for a list it has not seen, and says so', () => {
    const lists = new DeviceLists();
    lists.complete(status({ devices, deviceList: LIST }));
    for (const odd of [{ deviceList: 'fedcba9876543210', lastSeenAgo: [1, 2] }, { deviceList: LIST, lastSeenAgo: [1] }]) {
      const { status: s, paired } = lists.complete(status({ at: 20_000, ...odd }));
      expect(paired).toBe(false);
      expect(s.health!.devices).toEqual(devices);
    }
  });

  it('passes a full status, and a last will, as they are; a periodic one before any full one has no devices', () => {
    const lists = new DeviceLists();
    const first = lists.complete(status({ deviceList: LIST, lastSeenAgo: [1, 2] }));
    expect(first.paired).toBe(false);
    expect(first.status.health!.devices).toBeUndefined();
    const full = status({ devices, deviceList: LIST });
    expect(lists.complete(full)).toEqual({ status: full, paired: true });
    const will = status();
    expect(lists.complete(will)).toEqual({ status: will, paired: true });
    // The last will does not forget the list: the gateway's next boot may report against it.
    expect(lists.complete(status({ at: 30_000, deviceList: LIST, lastSeenAgo: [0, 0] })).status.health!.devices!.map((d) => d.lastSeen)).toEqual([30_000, 30_000]);
  });

  it('is per gateway', () => {
    const lists = new DeviceLists();
    lists.complete(status({ devices, deviceList: LIST }));
    const other = { ...status({ at: 20_000, deviceList: LIST, lastSeenAgo: [1, 2] }), gateway: 'gw-2' };
    expect(lists.complete(other).paired).toBe(false);
  });
});
