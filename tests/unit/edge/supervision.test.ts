import { describe, expect, it } from 'vitest';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import { AlarmEngine, COMM_LOST } from '../../../edge/alarm-engine.js';
import type { DeviceBinding } from '../../../edge/device-binding.js';
import { DEVICES_UNHEARD, Supervision } from '../../../edge/supervision.js';

/**
 * Supervision by silence, driven by the clock alone (no timers): the built-in
 * temperature sensor reports every 10 s and is lost after 30 s of silence.
 */
const profiles = loadBuiltinProfiles();
const sensor = (id: string): DeviceBinding => ({ device: { id, profile: 'mqtt-temperature-humidity' }, profile: profiles.get('mqtt-temperature-humidity')!, topic: `t/${id}` });
const S = 1000;
const self = { device: { id: 'gw-1', location: 'gateway gw-1' }, profile: { id: 'cosafe-gateway' } };

function supervised(ids: string[]) {
  const engine = new AlarmEngine({ site: 'tower-3', gateway: 'gw-1' });
  const bindings = ids.map(sensor);
  const s = new Supervision(engine, self);
  let audible = new Set<string>();
  return {
    s,
    bindings,
    /** The adapters can hear these devices now. */
    hear: (now: number, ...which: string[]) => {
      audible = new Set(which);
      s.hearing(bindings, (b) => audible.has(b.device.id), now);
    },
    check: (now: number) => s.check(bindings, now).map((e) => `${e.device} ${e.condition} ${e.state}`),
    lost: (id: string) => engine.isActive(id, COMM_LOST),
    gatewayTrouble: () => engine.isActive('gw-1', DEVICES_UNHEARD),
  };
}

describe('supervision counts silence from when a device could first be heard', () => {
  it('gives a device its full silence period from when its link came up, not from the start of the gateway', () => {
    const t = supervised(['th-0001']);
    t.s.seed(t.bindings, 0);
    // Start-up and the fleet's logins took 25 s before the subscription was granted.
    t.hear(20 * S);
    expect(t.check(20 * S)).toEqual([]);
    t.hear(25 * S, 'th-0001');
    expect(t.check(40 * S)).toEqual([]);
    expect(t.check(55 * S)).toEqual([]);
    expect(t.check(56 * S)).toEqual(['th-0001 comm-lost active']);
  });

  it("does not call a device lost while the gateway cannot hear it: that is the gateway's own trouble, cleared when the link is back", () => {
    const t = supervised(['th-0001', 'th-0002']);
    t.s.seed(t.bindings, 0);
    t.hear(0, 'th-0001', 'th-0002');
    t.s.heard(t.bindings[0]!, 5 * S);
    t.s.heard(t.bindings[1]!, 5 * S);
    // The connection to the device broker drops at 10 s.
    t.hear(10 * S);
    expect(t.check(36 * S)).toEqual([]);
    expect(t.lost('th-0001')).toBe(false);
    // Down longer than the devices may be silent: the gateway says it cannot hear them.
    expect(t.check(41 * S)).toEqual(['gw-1 devices-unheard active']);
    expect(t.check(50 * S)).toEqual([]);
    // Back at 60 s: the trouble clears, and each device gets a full period again.
    t.hear(60 * S, 'th-0001', 'th-0002');
    expect(t.check(61 * S)).toEqual(['gw-1 devices-unheard cleared']);
    expect(t.check(90 * S)).toEqual([]);
    t.s.heard(t.bindings[0]!, 85 * S);
    expect(t.check(91 * S)).toEqual(['th-0002 comm-lost active']);
    expect([t.lost('th-0001'), t.lost('th-0002'), t.gatewayTrouble()]).toEqual([false, true, false]);
  });

  it('raises nothing for a short drop of the link, and a device silent before it stays lost', () => {
    const t = supervised(['th-0001', 'th-0002']);
    t.s.seed(t.bindings, 0);
    t.hear(0, 'th-0001', 'th-0002');
    t.s.heard(t.bindings[1]!, 20 * S);
    expect(t.check(31 * S)).toEqual(['th-0001 comm-lost active']);
    t.hear(32 * S);
    t.hear(34 * S, 'th-0001', 'th-0002');
    expect(t.check(35 * S)).toEqual([]);
    expect(t.lost('th-0001')).toBe(true);
    // th-0002 was heard at 20 s, the link came back at 34 s: lost only 30 s after that.
    expect(t.check(64 * S)).toEqual([]);
    expect(t.check(65 * S)).toEqual(['th-0002 comm-lost active']);
  });
});
