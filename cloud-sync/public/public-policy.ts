import type { PublicHazard, SignalClass } from '../../broker/contract/index.js';
import type { PublicClass, PublicConfig, PublicPolicy } from '../../core/public-config.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import type { CapStatus } from '../alarms/cap.js';

/** What residents are told an alarm class is; undefined: never public (intrusion, supervisory, trouble). */
export const HAZARD_OF: Readonly<Partial<Record<SignalClass, PublicHazard>>> = { fire: 'fire', waterflow: 'fire', gas: 'gas', co: 'co' };

export type PublicDecision =
  | { public: true; hazard: PublicHazard; confirmed: boolean }
  | { public: false; why: 'disabled' | 'test-status' | 'never-public' | 'test-event' | 'not-active' | 'shelved' | 'policy-never' | 'department-ended' | 'awaiting-confirmation' | 'unregistered' };

/** The district's policy for a class (the district's own, else the hub's per class, else the default). */
export function policyFor(config: PublicConfig, district: string | null, cls: SignalClass): PublicPolicy {
  if (!HAZARD_OF[cls]) return 'never';
  const c = cls as PublicClass;
  const d = district === null ? undefined : config.policy.districts[district];
  return d?.classes[c] ?? d?.default ?? config.policy.classes[c] ?? config.policy.default;
}

/**
 * Whether an alarm's current occurrence is to be public now. Pure, so that the
 * rules read as the table they are:
 * - trouble, supervisory and intrusion signals are never public, nor events the
 *   edge marks as a test, nor anything while the hub's CAP status is Test;
 * - the alarm must be active (ISA-18.2 B or C): returning to normal ends it;
 * - `never`: never; `auto`: while active, unless a department ended it;
 *   `on-confirmation` (the default): once a department's acknowledgement said
 *   "warn the public", until it says otherwise or the alarm returns to normal;
 * - the site must be registered: without its position there is no area.
 */
export function publicDecision(a: AlarmRecord, o: { config: PublicConfig; status: CapStatus; registered: boolean }): PublicDecision {
  if (!o.config.enabled) return { public: false, why: 'disabled' };
  if (o.status === 'Test') return { public: false, why: 'test-status' };
  const hazard = HAZARD_OF[a.class];
  if (!hazard) return { public: false, why: 'never-public' };
  if (a.lastEvent.test) return { public: false, why: 'test-event' };
  if (a.state !== 'active-unacknowledged' && a.state !== 'active-acknowledged') return { public: false, why: 'not-active' };
  if (a.shelved) return { public: false, why: 'shelved' };
  const policy = policyFor(o.config, a.district, a.class);
  if (policy === 'never') return { public: false, why: 'policy-never' };
  const word = a.publicWarning?.warn;
  if (word === false) return { public: false, why: 'department-ended' };
  if (policy === 'on-confirmation' && word !== true) return { public: false, why: 'awaiting-confirmation' };
  if (!o.registered) return { public: false, why: 'unregistered' };
  return { public: true, hazard, confirmed: word === true };
}
