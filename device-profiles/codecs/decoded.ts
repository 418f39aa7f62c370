import type { SignalClass } from '../../core/vocabulary.js';
import type { DataPoint } from '../schema.js';

/** One value decoded from a device, before the edge adds who sent it. */
export interface DecodedValue {
  metric: DataPoint['metric'];
  unit: string;
  value: number;
  time: number;
  quality: 'good' | 'bad';
  /** Why the quality is bad (out of range), for the counter and the log. */
  note?: string;
}

/** A discrete signal a device reported itself (a panel's "FIRE ALARM ZONE 3"). */
export interface DecodedSignal {
  key: string;
  class: SignalClass;
  state: 'active' | 'cleared';
  time: number;
  /** The device's own words, for the fire department. */
  text?: string;
}

export interface DecodeOutcome {
  values: DecodedValue[];
  signals: DecodedSignal[];
  /** The device reported that every signal is back to normal (panel reset). */
  resetAll?: boolean;
  /** When the reset happened, by the device's own clock (a panel line with a time). */
  resetAt?: number;
  /** What a bridge reports about the device's link (zigbee2mqtt availability): offline raises "communication lost" at once, online proves the link. */
  availability?: 'online' | 'offline';
  /** Why, in words, for the trouble event. */
  availabilityText?: string;
  /** Problems that cost a value or the whole input: `where: why`. */
  errors: string[];
}

export const emptyOutcome = (): DecodeOutcome => ({ values: [], signals: [], errors: [] });

/**
 * Scale, offset and range check, the same for every transport. A value outside
 * its valid range is kept with quality "bad": dropping it would hide a failing
 * sensor, passing it as good would let it raise or clear an alarm.
 */
export function finishValue(point: DataPoint, raw: number | boolean, time: number): DecodedValue {
  let value: number;
  if (point.type === 'boolean') {
    const on = typeof raw === 'boolean' ? raw : raw !== 0;
    value = on !== point.invert ? 1 : 0;
  } else {
    // 12 significant digits: 7 * 0.1 is 0.7, not 0.7000000000000001.
    value = Number((Number(raw) * point.scale + point.offset).toPrecision(12));
  }
  if (point.range && (value < point.range[0] || value > point.range[1])) {
    return { metric: point.metric, unit: point.unit, value, time, quality: 'bad', note: `outside ${point.range[0]}..${point.range[1]}` };
  }
  return { metric: point.metric, unit: point.unit, value, time, quality: 'good' };
}
