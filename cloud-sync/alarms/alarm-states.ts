import type { AlarmLifecycleState, CapMsgType, SignalClass } from '../../broker/contract/index.js';

/** What can happen to an alarm: the process condition comes or goes, or an operator acknowledges. */
export type AlarmInput = 'activate' | 'clear' | 'ack';

export interface Transition {
  to: AlarmLifecycleState;
  /** A new occurrence (a new CAP Alert, a new incident), not a repeat of the current one. */
  newActivation: boolean;
  /** What the departments are sent, if anything. */
  cap?: CapMsgType;
}

/**
 * The ISA-18.2 alarm state transition diagram (states A normal, B unacknowledged,
 * C acknowledged, D returned to normal unacknowledged), as the hub applies it to
 * the events of the edge and the acknowledgements of fire departments. Pure, so
 * that it reads as the table it is; `undefined` means no transition (the input is
 * journaled, the state stays).
 *
 * Two rules the standard leaves to the alarm philosophy, decided here:
 * - a new activation of an acknowledged alarm (the edge raised it again under a
 *   new event id) makes it unacknowledged again (C -> B), and the departments
 *   get a CAP Update: someone must look again;
 * - returning to normal before anyone acknowledged (B -> D) ends the occurrence
 *   for the departments (CAP Cancel), but the alarm still waits for an
 *   acknowledgement, as ISA-18.2 requires.
 */
export function transition(state: AlarmLifecycleState, input: AlarmInput): Transition | undefined {
  switch (state) {
    case 'normal':
      // A -> B
      return input === 'activate' ? { to: 'active-unacknowledged', newActivation: true, cap: 'Alert' } : undefined;
    case 'active-unacknowledged':
      // B -> C, B -> D; a repeated activation changes nothing.
      if (input === 'ack') return { to: 'active-acknowledged', newActivation: false };
      if (input === 'clear') return { to: 'returned-unacknowledged', newActivation: false, cap: 'Cancel' };
      return undefined;
    case 'active-acknowledged':
      // C -> A; C -> B on a new activation.
      if (input === 'clear') return { to: 'normal', newActivation: false, cap: 'Cancel' };
      if (input === 'activate') return { to: 'active-unacknowledged', newActivation: false, cap: 'Update' };
      return undefined;
    case 'returned-unacknowledged':
      // D -> A on acknowledgement; D -> B when the condition comes back (a new occurrence).
      if (input === 'ack') return { to: 'normal', newActivation: false };
      if (input === 'activate') return { to: 'active-unacknowledged', newActivation: true, cap: 'Alert' };
      return undefined;
  }
}

/** Whether an acknowledgement is what the alarm waits for (ISA-18.2 states B and D). */
export function awaitsAck(state: AlarmLifecycleState): boolean {
  return state === 'active-unacknowledged' || state === 'returned-unacknowledged';
}

/**
 * ISA-18.2 shelving (state "shelved") is for nuisance signals an operator has
 * reviewed; a fire, gas or CO alarm (or waterflow, intrusion) is never shelved
 * or suppressed: only supervisory and trouble signals are.
 */
export function mayShelve(cls: SignalClass): boolean {
  return cls === 'supervisory' || cls === 'trouble';
}
