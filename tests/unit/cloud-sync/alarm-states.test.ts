import { describe, expect, it } from 'vitest';
import type { AlarmLifecycleState } from '../../../broker/contract/index.js';
import { mayShelve, transition, type AlarmInput } from '../../../cloud-sync/alarms/alarm-states.js';

// ISA-18.2 alarm state transition diagram, A normal, B unacknowledged, C acknowledged, D returned unacknowledged.
const table: [AlarmLifecycleState, AlarmInput, AlarmLifecycleState | undefined, string | undefined][] = [
  ['normal', 'activate', 'active-unacknowledged', 'Alert'],
  ['normal', 'clear', undefined, undefined],
  ['normal', 'ack', undefined, undefined],
  ['active-unacknowledged', 'ack', 'active-acknowledged', undefined],
  ['active-unacknowledged', 'clear', 'returned-unacknowledged', 'Cancel'],
  ['active-unacknowledged', 'activate', undefined, undefined],
  ['active-acknowledged', 'clear', 'normal', 'Cancel'],
  ['active-acknowledged', 'activate', 'active-unacknowledged', 'Update'],
  ['active-acknowledged', 'ack', undefined, undefined],
  ['returned-unacknowledged', 'ack', 'normal', undefined],
  ['returned-unacknowledged', 'activate', 'active-unacknowledged', 'Alert'],
  ['returned-unacknowledged', 'clear', undefined, undefined],
];

describe('alarm states (ISA-18.2)', () => {
  it.each(table)('%s + %s -> %s (%s)', (from, input, to, cap) => {
    const t = transition(from, input);
    expect(t?.to).toBe(to);
    expect(t?.cap).toBe(cap);
  });

  it('shelves only supervisory and trouble signals, never fire, gas or CO', () => {
    expect(['fire', 'gas', 'co', 'waterflow', 'intrusion', 'supervisory', 'trouble'].filter((c) => mayShelve(c as never))).toEqual(['supervisory', 'trouble']);
  });
});
