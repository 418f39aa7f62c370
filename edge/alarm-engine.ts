import { createHash } from 'node:crypto';
import type { AlarmEvent } from '../broker/contract/index.js';
import type { DecodedValue } from '../device-profiles/codecs/json-payload.js';
import type { Condition } from '../device-profiles/schema.js';
import type { DeviceBinding } from './device-binding.js';

/**
 * Decides, for one condition, whether it is active after seeing `value`.
 * Threshold conditions have a deadband (hysteresis): once raised, a high limit
 * clears only when the value falls below `limit - deadband`, so a value hovering
 * at the limit does not chatter between alarm and all-clear.
 */
export function nextConditionState(when: Condition['when'], active: boolean, value: number): boolean {
  if ('equals' in when) return value === Number(when.equals);
  if (when.above !== undefined) return active ? value > when.above - when.deadband : value > when.above;
  if (when.below !== undefined) return active ? value < when.below + when.deadband : value < when.below;
  return active;
}

/** Stable id of an event: the same change of the same condition always gets the same id. */
export function eventIdFor(site: string, device: string, condition: string, state: string, time: number): string {
  const digest = createHash('sha256').update(`${site}\u0000${device}\u0000${condition}\u0000${state}\u0000${time}`).digest('hex');
  return `evt_${digest.slice(0, 32)}`;
}

export interface AlarmEngineOptions {
  site: string;
  gateway: string;
}

/**
 * Edge alarm detection: runs every condition of a device's profile on every good
 * reading and turns a raise or a clear into a contract event.
 */
export class AlarmEngine {
  /** `${device}/${condition}` → active */
  private readonly active = new Map<string, boolean>();

  constructor(private readonly options: AlarmEngineOptions) {}

  evaluate(binding: DeviceBinding, value: DecodedValue): AlarmEvent[] {
    // A reading of bad quality neither raises nor clears anything: acting on a
    // failing sensor could give a false all-clear. (It is counted by the pipeline.)
    if (value.quality !== 'good') return [];
    const events: AlarmEvent[] = [];
    for (const condition of binding.profile.conditions) {
      if (condition.metric !== value.metric) continue;
      const key = `${binding.device.id}/${condition.id}`;
      const was = this.active.get(key) ?? false;
      const now = nextConditionState(condition.when, was, value.value);
      if (now === was) continue;
      this.active.set(key, now);
      const state = now ? 'active' : 'cleared';
      events.push({
        v: 1,
        eventId: eventIdFor(this.options.site, binding.device.id, condition.id, state, value.time),
        gateway: this.options.gateway,
        site: this.options.site,
        device: binding.device.id,
        profile: binding.profile.id,
        condition: condition.id,
        class: condition.class,
        state,
        metric: value.metric,
        value: value.value,
        unit: value.unit,
        time: value.time,
        ...(binding.device.location ? { location: binding.device.location } : {}),
      });
    }
    return events;
  }

  /** Conditions currently active, for status displays. */
  activeConditions(): string[] {
    return [...this.active].filter(([, on]) => on).map(([key]) => key);
  }
}
