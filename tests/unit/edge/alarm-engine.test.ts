import { describe, expect, it } from 'vitest';
import { AlarmEvent } from '../../../broker/contract/index.js';
import type { DecodedValue } from '../../../device-profiles/codecs/decoded.js';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import { Profile } from '../../../device-profiles/schema.js';
import { AlarmEngine, eventIdFor, ruleHolds } from '../../../edge/alarm-engine.js';
import type { DeviceBinding } from '../../../edge/device-binding.js';

const profiles = loadBuiltinProfiles();
const binding = (id: string, profile: string): DeviceBinding => ({ device: { id, profile, location: '1F kitchen' }, profile: profiles.get(profile)!, topic: `t/${id}` });
const reading = (metric: DecodedValue['metric'], value: number, time: number, quality: 'good' | 'bad' = 'good'): DecodedValue => ({ metric, unit: '', value, time, quality });
const temp = (value: number, time: number, quality: 'good' | 'bad' = 'good') => reading('temperature', value, time, quality);
const S = 1000;

/** A one-condition profile, for testing one behaviour at a time. */
function withCondition(condition: Record<string, unknown>, metric = 'combustible_gas', unit = '%LEL'): DeviceBinding {
  const profile = Profile.parse({
    id: 'test-profile',
    vendor: 'v',
    model: 'm',
    description: 'd',
    version: 1,
    transport: 'mqtt',
    points: [{ metric, unit, range: [-1000, 1000], read: { json: 'v' } }],
    conditions: [{ id: 'gas-high', class: 'gas', metric, ...condition }],
  });
  return { device: { id: 'dev', profile: 'test-profile' }, profile, topic: 't' };
}

describe('threshold with deadband', () => {
  const high = { above: 57, deadband: 5 };
  it('raises above the limit and clears only at limit minus deadband', () => {
    expect(ruleHolds(high, false, 57)).toBe(false);
    expect(ruleHolds(high, false, 57.1)).toBe(true);
    expect(ruleHolds(high, true, 53)).toBe(true);
    expect(ruleHolds(high, true, 52.1)).toBe(true);
    expect(ruleHolds(high, true, 52)).toBe(false);
  });
  it('works the other way round for low limits', () => {
    const low = { below: 1.5, deadband: 0.5 };
    expect(ruleHolds(low, false, 1.4)).toBe(true);
    expect(ruleHolds(low, true, 1.9)).toBe(true);
    expect(ruleHolds(low, true, 2.0)).toBe(false);
  });
  it('holds a state condition while the value is one of its states', () => {
    expect(ruleHolds({ in: [2, 3] }, false, 3)).toBe(true);
    expect(ruleHolds({ in: [2, 3] }, true, 1)).toBe(false);
  });
});

describe('alarm engine', () => {
  it('raises a fire event once when the heat limit is crossed, and clears it once', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    expect(engine.evaluate(b, temp(40, 1 * S))).toEqual([]);
    const [raised, ...rest] = engine.evaluate(b, temp(60, 500 * S));
    expect(rest).toEqual([]);
    expect(raised).toMatchObject({ class: 'fire', state: 'active', device: 'temp-1', condition: 'high-heat', value: 60, time: 500 * S, location: '1F kitchen' });
    expect(engine.evaluate(b, temp(61, 600 * S))).toEqual([]);
    expect(engine.evaluate(b, temp(55, 700 * S))).toEqual([]); // inside the deadband: still active
    expect(engine.activeConditions()).toEqual(['temp-1/high-heat']);
    expect(engine.evaluate(b, temp(50, 800 * S))).toMatchObject([{ condition: 'high-heat', state: 'cleared', value: 50 }]);
    expect(engine.activeConditions()).toEqual([]);
  });

  it('raises smoke as a fire alarm', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const events = engine.evaluate(binding('smoke-1', 'mqtt-smoke-detector'), reading('smoke', 1, 9));
    expect(events).toMatchObject([{ class: 'fire', state: 'active', metric: 'smoke' }]);
  });

  it('neither raises nor clears on a reading of bad quality (no false all-clear)', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    engine.evaluate(b, temp(70, 1));
    expect(engine.evaluate(b, temp(-300, 2, 'bad'))).toEqual([]);
    expect(engine.activeConditions()).toEqual(['temp-1/high-heat']);
  });

  it('waits for the on-delay before raising, and forgets a transient that goes away', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = withCondition({ when: { above: 20 }, onDelayS: 3 });
    expect(engine.evaluate(b, reading('combustible_gas', 25, 0))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 5, 1 * S))).toEqual([]); // transient over
    expect(engine.evaluate(b, reading('combustible_gas', 25, 2 * S))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 26, 4 * S))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 27, 5 * S))).toMatchObject([{ state: 'active', value: 27, time: 5 * S }]);
  });

  it('waits for the off-delay before clearing', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = withCondition({ when: { above: 20 }, offDelayS: 10 });
    engine.evaluate(b, reading('combustible_gas', 25, 0));
    expect(engine.evaluate(b, reading('combustible_gas', 5, 1 * S))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 25, 2 * S))).toEqual([]); // back: off-delay restarts
    expect(engine.evaluate(b, reading('combustible_gas', 5, 3 * S))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 5, 12 * S))).toEqual([]);
    expect(engine.evaluate(b, reading('combustible_gas', 5, 13 * S))).toMatchObject([{ state: 'cleared' }]);
  });

  it('raises rate-of-rise on a fast rise, not on a slow one to the same value', () => {
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    const slow = new AlarmEngine({ site: 's', gateway: 'g' });
    const slowEvents = [20, 24, 28, 32].flatMap((v, i) => slow.evaluate(b, temp(v, i * 60 * S)));
    expect(slowEvents).toEqual([]);
    const fast = new AlarmEngine({ site: 's', gateway: 'g' });
    const fastEvents = [20, 23, 26, 29].flatMap((v, i) => fast.evaluate(b, temp(v, i * 15 * S)));
    expect(fastEvents).toMatchObject([{ condition: 'rate-of-rise', class: 'fire', state: 'active', value: 29 }]);
  });

  it('flags an alarm that activates 3 times within 60 s as chattering', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = binding('smoke-1', 'mqtt-smoke-detector');
    const raised = [0, 10, 20, 30, 40].flatMap((t) => engine.evaluate(b, reading('smoke', t % 20 === 0 ? 1 : 0, t * S))).filter((e) => e.state === 'active');
    expect(raised.map((e) => e.chattering ?? false)).toEqual([false, false, true]);
    // Once the bursts stop, a new activation is not chattering.
    engine.evaluate(b, reading('smoke', 0, 200 * S));
    expect(engine.evaluate(b, reading('smoke', 1, 300 * S))[0]?.chattering).toBeUndefined();
  });

  it('tracks signals a panel reports: repeats are not new events, a reset clears them', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const panel = { device: { id: 'panel', profile: 'serial-conventional-panel-printer' }, profile: profiles.get('serial-conventional-panel-printer')! };
    const fire = { key: 'fire-zone-03', class: 'fire' as const, state: 'active' as const, time: 1, text: 'FIRE ALARM ZONE 03' };
    expect(engine.signal(panel, fire)).toMatchObject([{ condition: 'fire-zone-03', class: 'fire', state: 'active', text: 'FIRE ALARM ZONE 03' }]);
    expect(engine.signal(panel, { ...fire, time: 2 })).toEqual([]);
    engine.signal(panel, { key: 'ac-power', class: 'trouble', state: 'active', time: 3 });
    expect(engine.resetSignals(panel, 4).map((e) => [e.condition, e.class, e.state])).toEqual([
      ['fire-zone-03', 'fire', 'cleared'],
      ['ac-power', 'trouble', 'cleared'],
    ]);
    expect(engine.activeConditions()).toEqual([]);
  });

  it('makes whatever a panel printed into a key, text or location an event the contract accepts', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const panel = {
      device: { id: 'panel', profile: 'serial-conventional-panel-printer', location: 'riser\ncupboard\u202e 2F' },
      profile: profiles.get('serial-conventional-panel-printer')!,
    };
    const long = `zone-${'x'.repeat(80)}`;
    const signals = [
      { key: 'fire zone 3\nreading', text: 'FIRE\tALARM\u001b[2J ZONE 3' },
      { key: `${long}-a`, text: 'one' },
      { key: `${long}-b`, text: 'two' },
      { key: '_hidden', text: 't'.repeat(300) },
    ].map((s) => ({ ...s, class: 'fire' as const, state: 'active' as const, time: 1 }));
    const events = signals.flatMap((s) => engine.signal(panel, s));
    expect(events).toHaveLength(4);
    for (const e of events) expect(AlarmEvent.safeParse(e).success, JSON.stringify(e)).toBe(true);
    expect(events[0]).toMatchObject({ condition: 'fire_zone_3_reading', text: 'FIRE ALARM [2J ZONE 3', location: 'riser cupboard  2F' });
    // Two long keys that share their first 64 characters stay two conditions.
    expect(events[1]!.condition).not.toBe(events[2]!.condition);
    expect(events[1]!.condition.length).toBeLessThanOrEqual(64);
    expect(events[3]).toMatchObject({ condition: 'k_hidden' });
    expect(events[3]!.text).toHaveLength(200);
    // The restore of the same printed key clears the same condition.
    expect(engine.signal(panel, { ...signals[0]!, state: 'cleared', time: 2 })).toMatchObject([{ condition: 'fire_zone_3_reading', state: 'cleared' }]);
  });

  it('keeps condition state across a restart: no second raise, and the clear still comes', () => {
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    const before = new AlarmEngine({ site: 's', gateway: 'g' });
    before.evaluate(b, temp(70, 1));
    const after = new AlarmEngine({ site: 's', gateway: 'g', snapshot: JSON.parse(JSON.stringify(before.snapshot())) });
    expect(after.evaluate(b, temp(71, 2))).toEqual([]);
    expect(after.evaluate(b, temp(20, 3))).toMatchObject([{ condition: 'high-heat', state: 'cleared' }]);
  });

  it('gives the same event the same id, and different events different ids', () => {
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).toBe(eventIdFor('s', 'd', 'c', 'active', 1));
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).not.toBe(eventIdFor('s', 'd', 'c', 'cleared', 1));
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).toMatch(/^evt_[0-9a-f]{32}$/);
  });
});
