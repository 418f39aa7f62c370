import { describe, expect, it } from 'vitest';
import { compareVersions, copyMessages, planTakeover, type LocalCopyState } from '../../../cloud-sync/alarms/alarm-copy.js';
import type { AlarmRecord, StoredMessage } from '../../../cloud-sync/alarms/alarm-store.js';

/**
 * The ordering of an alarm's shared copies (cloud-sync/alarms/alarm-copy.ts):
 * a later holder's writes (a higher epoch) always win, one holder's writes
 * are ordered by their sequence, and on a takeover the local state wins only
 * when it is strictly newer.
 */
const v = (epoch: number, seq: number) => ({ epoch, seq });
const local = (entries: Record<string, LocalCopyState>) => new Map(Object.entries(entries));

describe('the versions of shared alarm copies', () => {
  it('order a later epoch after any write of an earlier one, and one epoch by sequence', () => {
    expect(compareVersions(v(2, 1), v(1, 900))).toBeGreaterThan(0);
    expect(compareVersions(v(1, 900), v(2, 1))).toBeLessThan(0);
    expect(compareVersions(v(3, 5), v(3, 4))).toBeGreaterThan(0);
    expect(compareVersions(v(3, 4), v(3, 4))).toBe(0);
  });
});

describe('taking a partition over', () => {
  it('imports a copy newer than the local state, and one of an alarm never seen here', () => {
    const plan = planTakeover(local({ a: { version: v(1, 7), written: true } }), new Map([['a', v(2, 1)], ['b', v(1, 3)]]));
    expect(plan).toEqual({ take: ['a', 'b'], write: [] });
  });

  it('keeps a stale worker’s local state from winning: its older copy loses to the one its successor wrote', () => {
    // The worker held the partition in epoch 1 and wrote seq 9; its successor (epoch 2) went on and wrote seq 3.
    const plan = planTakeover(local({ a: { version: v(1, 9), written: true } }), new Map([['a', v(2, 3)]]));
    expect(plan.take).toEqual(['a']);
  });

  it('writes the local state again when it is newer than Redis’ copy (a write that never reached Redis), or Redis has none', () => {
    const plan = planTakeover(local({ a: { version: v(4, 2), written: false }, b: { version: v(4, 1), written: false }, c: { version: null, written: false } }), new Map([['a', v(4, 1)]]));
    expect(plan).toEqual({ take: [], write: ['a', 'b', 'c'] });
  });

  it('changes nothing when both are the same write', () => {
    expect(planTakeover(local({ a: { version: v(5, 5), written: true } }), new Map([['a', v(5, 5)]]))).toEqual({ take: [], write: [] });
  });

  it('never lets a local alarm without a version beat a shared copy', () => {
    expect(planTakeover(local({ a: { version: null, written: false } }), new Map([['a', v(1, 1)]]))).toEqual({ take: ['a'], write: [] });
  });
});

describe('the messages a copy carries', () => {
  it('keeps the current occurrence’s Alert and its latest messages, none of an earlier occurrence', () => {
    const m = (id: string, activation: number): StoredMessage => ({ id, alarmId: 'x', activation, msgType: 'Update', escalation: 0, sent: 0, xml: '' });
    const all = [m('old', 1), m('alert', 2), ...Array.from({ length: 12 }, (_, i) => m(`u${i}`, 2))];
    const kept = copyMessages(all, { activation: 2, alertId: 'alert' } as AlarmRecord).map((x) => x.id);
    expect(kept[0]).toBe('alert');
    expect(kept).not.toContain('old');
    expect(kept.at(-1)).toBe('u11');
    expect(kept).toHaveLength(9);
  });
});
