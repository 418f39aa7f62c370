import { createHash } from 'node:crypto';
import { cleanText, conditionKey, type AlarmEvent } from '../broker/contract/index.js';
import type { DeviceConfig } from '../core/config.js';
import type { DecodedSignal, DecodedValue } from '../device-profiles/codecs/decoded.js';
import type { Condition, ConditionRule } from '../device-profiles/schema.js';
import type { DeviceBinding } from './device-binding.js';

/**
 * A decoded value as the engine sees it. `uncertain`: the gateway restamped it
 * with its receive time because the device's own time was absurd; the value is
 * still the device's measurement, so it raises and clears like a good one.
 */
export type EngineValue = Omit<DecodedValue, 'quality'> & { quality: DecodedValue['quality'] | 'uncertain' };

/** ISA-18.2 §16.5: an alarm that activates this often within the window is chattering. */
export const CHATTER_ACTIVATIONS = 3;
export const CHATTER_WINDOW_MS = 60_000;

/**
 * Whether a threshold, equality or state rule holds for `value`, given whether
 * it is active now. Threshold rules have a deadband (hysteresis): once raised, a
 * high limit clears only when the value falls to `limit - deadband` or below, so
 * a value hovering at the limit does not chatter between alarm and all-clear.
 * Rate-of-rise needs history and is decided by the engine.
 */
export function ruleHolds(rule: Exclude<ConditionRule, { riseBy: number }>, active: boolean, value: number): boolean {
  if ('equals' in rule) return value === Number(rule.equals);
  if ('in' in rule) return rule.in.includes(value);
  if (rule.above !== undefined) return active ? value > rule.above - rule.deadband : value > rule.above;
  if (rule.below !== undefined) return active ? value < rule.below + rule.deadband : value < rule.below;
  return active;
}

/** Stable id of an event: the same change of the same condition always gets the same id. */
export function eventIdFor(site: string, device: string, condition: string, state: string, time: number): string {
  const digest = createHash('sha256').update(`${site}\u0000${device}\u0000${condition}\u0000${state}\u0000${time}`).digest('hex');
  return `evt_${digest.slice(0, 32)}`;
}

/** What survives a restart of one condition: whether it is active, and its recent activations for chatter detection. */
export interface ConditionRecord {
  active: boolean;
  since: number;
  activations: number[];
  class?: AlarmEvent['class'];
}

/** What survives a restart, per `device/condition` key. */
export interface EngineSnapshot {
  v: 1;
  conditions: Record<string, ConditionRecord>;
}

interface ConditionState {
  active: boolean;
  /** When the state last changed (raise or clear). */
  since: number;
  /** On-delay running: the rule has held since then. */
  pendingSince?: number;
  /** Off-delay running: the rule has not held since then. */
  clearingSince?: number;
  activations: number[];
  /** The class it was last raised with (for clearing signals on a panel reset). */
  class?: AlarmEvent['class'];
}

export interface AlarmEngineOptions {
  site: string;
  gateway: string;
  snapshot?: EngineSnapshot;
}

/** What an event names as its source: a device, or the gateway itself (for its own trouble, such as a full outbox). */
export interface SignalSource {
  device: Pick<DeviceConfig, 'id' | 'location'>;
  profile: { id: string };
}

type Cause = { condition: string; class: AlarmEvent['class']; metric?: string; value?: number; unit?: string; text?: string };

/**
 * Edge alarm detection. Runs every condition of a device's profile on every good
 * reading (limits with deadband, on- and off-delay, rate of rise, states) and
 * tracks the signals a device reports itself (panel events, Contact ID,
 * communication loss). A raise or a clear becomes one contract event.
 *
 * Delays are measured on the readings' own times, so a decision depends only on
 * what the device reported, not on when the gateway got round to it.
 */
export class AlarmEngine {
  private readonly states = new Map<string, ConditionState>();
  /** Recent samples per `${device}/${metric}`, for rate-of-rise. */
  private readonly history = new Map<string, { time: number; value: number }[]>();

  constructor(private readonly options: AlarmEngineOptions) {
    for (const [key, s] of Object.entries(options.snapshot?.conditions ?? {})) this.states.set(key, { ...s, activations: [...s.activations] });
  }

  evaluate(binding: DeviceBinding, value: EngineValue): AlarmEvent[] {
    // A reading of bad quality neither raises nor clears anything: acting on a
    // failing sensor could give a false all-clear. (It is counted by the pipeline.)
    // One whose time the gateway restamped still does: a smoke detector with a
    // wrong clock still sees smoke, and a lost fire alarm is the worse error.
    if (value.quality === 'bad') return [];
    const conditions = binding.profile.conditions.filter((c) => c.metric === value.metric);
    if (conditions.length === 0) return [];
    const samples = this.remember(binding, value, conditions);
    const events: AlarmEvent[] = [];
    for (const condition of conditions) {
      const key = `${binding.device.id}/${condition.id}`;
      const state = this.stateOf(key);
      const holds = this.holds(condition, state.active, value, samples);
      const change = this.step(state, holds, value.time, condition);
      if (change) {
        events.push(this.event(binding, key, state, change, value.time, { condition: condition.id, class: condition.class, metric: value.metric, value: value.value, unit: value.unit }));
      }
    }
    return events;
  }

  /**
   * A signal the device reported itself; a repeat of the current state is not a
   * new event. Its key is made a contract id here (`conditionKey`), so whatever
   * a panel printed into a capture group, the event passes the contract.
   */
  signal(binding: SignalSource, signal: DecodedSignal): AlarmEvent[] {
    const condition = conditionKey(signal.key);
    const key = `${binding.device.id}/${condition}`;
    const state = this.stateOf(key);
    const active = signal.state === 'active';
    if (state.active === active) return [];
    return [this.event(binding, key, state, active ? 'active' : 'cleared', signal.time, { condition, class: signal.class, ...(signal.text ? { text: signal.text } : {}) })];
  }

  /** A panel reset ("SYSTEM NORMAL"): every signal the device reported clears. Conditions on readings are left to their readings. */
  resetSignals(binding: DeviceBinding, time: number, text?: string): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    const ownConditions = new Set(binding.profile.conditions.map((c) => c.id));
    for (const [key, state] of this.states) {
      const [device, condition] = splitKey(key);
      if (device !== binding.device.id || !state.active || ownConditions.has(condition) || condition === COMM_LOST) continue;
      // conditionKey: a state saved by an older version may carry a key the contract now refuses.
      events.push(this.event(binding, key, state, 'cleared', time, { condition: conditionKey(condition), class: state.class ?? 'trouble', ...(text ? { text } : {}) }));
    }
    return events;
  }

  /** Conditions currently active, as `device/condition`. */
  activeConditions(): string[] {
    return [...this.states].filter(([, s]) => s.active).map(([key]) => key);
  }

  isActive(device: string, condition: string): boolean {
    return this.states.get(`${device}/${condition}`)?.active ?? false;
  }

  snapshot(): EngineSnapshot {
    const conditions: EngineSnapshot['conditions'] = {};
    for (const key of this.states.keys()) {
      const record = this.record(key);
      if (record) conditions[key] = record;
    }
    return { v: 1, conditions };
  }

  /** The key of the condition an event is about. */
  static keyOf(event: Pick<AlarmEvent, 'device' | 'condition'>): string {
    return `${event.device}/${event.condition}`;
  }

  /** What must survive a restart of one condition; undefined when there is nothing worth keeping (normal, no recent activations). */
  record(key: string): ConditionRecord | undefined {
    const s = this.states.get(key);
    if (!s || (!s.active && s.activations.length === 0)) return undefined;
    return { active: s.active, since: s.since, activations: [...s.activations], ...(s.class ? { class: s.class } : {}) };
  }

  /**
   * Puts one condition back as it was recorded (or to normal): its change
   * could not be written, so it must be decided again from the next reading
   * rather than be taken as reported.
   */
  reset(key: string, record: ConditionRecord | undefined): void {
    if (record) this.states.set(key, { ...record, activations: [...record.activations] });
    else this.states.delete(key);
  }

  private stateOf(key: string): ConditionState {
    let s = this.states.get(key);
    if (!s) {
      s = { active: false, since: 0, activations: [] };
      this.states.set(key, s);
    }
    return s;
  }

  private remember(binding: DeviceBinding, value: EngineValue, conditions: Condition[]) {
    const windowMs = Math.max(0, ...conditions.map((c) => ('riseBy' in c.when ? c.when.withinS * 1000 : 0)));
    if (windowMs === 0) return [];
    const key = `${binding.device.id}/${value.metric}`;
    const list = (this.history.get(key) ?? []).filter((s) => s.time >= value.time - windowMs && s.time < value.time);
    list.push({ time: value.time, value: value.value });
    this.history.set(key, list);
    return list;
  }

  private holds(condition: Condition, active: boolean, value: EngineValue, samples: { time: number; value: number }[]): boolean {
    const rule = condition.when;
    if ('riseBy' in rule) {
      const windowStart = value.time - rule.withinS * 1000;
      const lowest = Math.min(...samples.filter((s) => s.time >= windowStart).map((s) => s.value));
      return value.value - lowest >= rule.riseBy;
    }
    return ruleHolds(rule, active, value.value);
  }

  /** Applies on- and off-delay; returns the change to report, if any. */
  private step(state: ConditionState, holds: boolean, time: number, condition: Condition): 'active' | 'cleared' | undefined {
    if (!state.active) {
      state.clearingSince = undefined;
      if (!holds) {
        state.pendingSince = undefined;
        return undefined;
      }
      state.pendingSince ??= time;
      return time - state.pendingSince >= condition.onDelayS * 1000 ? 'active' : undefined;
    }
    state.pendingSince = undefined;
    if (holds) {
      state.clearingSince = undefined;
      return undefined;
    }
    state.clearingSince ??= time;
    return time - state.clearingSince >= condition.offDelayS * 1000 ? 'cleared' : undefined;
  }

  private event(binding: SignalSource, key: string, state: ConditionState, change: 'active' | 'cleared', time: number, cause: Cause): AlarmEvent {
    state.active = change === 'active';
    state.since = time;
    state.pendingSince = undefined;
    state.clearingSince = undefined;
    state.class = cause.class;
    let chattering = false;
    if (change === 'active') {
      state.activations = [...state.activations.filter((t) => t > time - CHATTER_WINDOW_MS), time];
      chattering = state.activations.length >= CHATTER_ACTIVATIONS;
    }
    // Free text is the device's (a panel's line) and the config's: made fit for the contract, never refused.
    const text = cause.text ? cleanText(cause.text) : '';
    const location = binding.device.location ? cleanText(binding.device.location) : '';
    return {
      v: 1,
      eventId: eventIdFor(this.options.site, binding.device.id, cause.condition, change, time),
      gateway: this.options.gateway,
      site: this.options.site,
      device: binding.device.id,
      profile: binding.profile.id,
      condition: cause.condition,
      class: cause.class,
      state: change,
      time,
      ...(cause.metric !== undefined ? { metric: cause.metric, value: cause.value, unit: cause.unit } : {}),
      ...(text ? { text } : {}),
      ...(chattering ? { chattering: true } : {}),
      ...(location ? { location } : {}),
    };
  }
}

/** The key of the supervision signal a silent device raises. */
export const COMM_LOST = 'comm-lost';

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
