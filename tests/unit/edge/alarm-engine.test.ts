import { describe, expect, it } from 'vitest';
import type { DecodedValue } from '../../../device-profiles/codecs/json-payload.js';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import { AlarmEngine, eventIdFor, nextConditionState } from '../../../edge/alarm-engine.js';
import type { DeviceBinding } from '../../../edge/device-binding.js';

const profiles = loadBuiltinProfiles();
const binding = (id: string, profile: string): DeviceBinding => ({ device: { id, profile, location: '1F kitchen' }, profile: profiles.get(profile)!, topic: `t/${id}` });
const temp = (value: number, time: number, quality: 'good' | 'bad' = 'good'): DecodedValue => ({ metric: 'temperature', unit: 'Cel', value, time, quality });

describe('threshold with deadband', () => {
  const high = { above: 57, deadband: 5 };
  it('raises above the limit and clears only below limit minus deadband', () => {
    expect(nextConditionState(high, false, 57)).toBe(false);
    expect(nextConditionState(high, false, 57.1)).toBe(true);
    expect(nextConditionState(high, true, 53)).toBe(true);
    expect(nextConditionState(high, true, 52.1)).toBe(true);
    expect(nextConditionState(high, true, 52)).toBe(false);
  });
  it('works the other way round for low limits', () => {
    const low = { below: 1.5, deadband: 0.5 };
    expect(nextConditionState(low, false, 1.4)).toBe(true);
    expect(nextConditionState(low, true, 1.9)).toBe(true);
    expect(nextConditionState(low, true, 2.0)).toBe(false);
  });
});

describe('alarm engine', () => {
  it('raises a fire event once when the heat limit is crossed, and clears it once', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    expect(engine.evaluate(b, temp(40, 1))).toEqual([]);
    const [raised, ...rest] = engine.evaluate(b, temp(60, 2));
    expect(rest).toEqual([]);
    expect(raised).toMatchObject({ class: 'fire', state: 'active', device: 'temp-1', condition: 'high-heat', value: 60, time: 2, location: '1F kitchen' });
    expect(engine.evaluate(b, temp(61, 3))).toEqual([]);
    expect(engine.evaluate(b, temp(55, 4))).toEqual([]); // inside the deadband: still active
    expect(engine.activeConditions()).toEqual(['temp-1/high-heat']);
    expect(engine.evaluate(b, temp(50, 5))).toMatchObject([{ state: 'cleared', value: 50 }]);
    expect(engine.activeConditions()).toEqual([]);
  });

  it('raises smoke as a fire alarm', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const events = engine.evaluate(binding('smoke-1', 'mqtt-smoke-detector'), { metric: 'smoke', unit: 'bool', value: 1, time: 9, quality: 'good' });
    expect(events).toMatchObject([{ class: 'fire', state: 'active', metric: 'smoke' }]);
  });

  it('neither raises nor clears on a reading of bad quality (no false all-clear)', () => {
    const engine = new AlarmEngine({ site: 's', gateway: 'g' });
    const b = binding('temp-1', 'mqtt-temperature-humidity');
    engine.evaluate(b, temp(70, 1));
    expect(engine.evaluate(b, temp(-300, 2, 'bad'))).toEqual([]);
    expect(engine.activeConditions()).toEqual(['temp-1/high-heat']);
  });

  it('gives the same event the same id, and different events different ids', () => {
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).toBe(eventIdFor('s', 'd', 'c', 'active', 1));
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).not.toBe(eventIdFor('s', 'd', 'c', 'cleared', 1));
    expect(eventIdFor('s', 'd', 'c', 'active', 1)).toMatch(/^evt_[0-9a-f]{32}$/);
  });
});
