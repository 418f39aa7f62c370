import { describe, expect, it } from 'vitest';
import { MAX_SEQUENCE_GAP, SequenceTracker } from '../../../cloud-sync/sequence-tracker.js';

describe('sequence tracker', () => {
  it('takes a batch for a duplicate only if that very boot and seq was seen', () => {
    const t = new SequenceTracker();
    // Live batches 101-103 arrive before the backlog 1-3 of the same boot.
    for (const seq of [101, 102, 103]) t.add('gw', 'b1', seq);
    expect(t.has('gw', 'b1', 1)).toBe(false);
    for (const seq of [1, 2, 3]) t.add('gw', 'b1', seq);
    expect(t.has('gw', 'b1', 2)).toBe(true);
    expect(t.has('gw', 'b1', 102)).toBe(true);
    expect(t.has('gw', 'b1', 50)).toBe(false);
    // A replay of an earlier boot is not a duplicate of this one.
    expect(t.has('gw', 'b0', 2)).toBe(false);
    expect(t.has('other', 'b1', 2)).toBe(false);
  });

  it('counts the holes below the highest seq, and they close as the backlog arrives', () => {
    const t = new SequenceTracker();
    t.add('gw', 'b1', 1);
    t.add('gw', 'b1', 5);
    expect(t.holes('gw')).toBe(3);
    t.add('gw', 'b1', 3);
    t.add('gw', 'b1', 2);
    t.add('gw', 'b1', 4);
    expect(t.holes('gw')).toBe(0);
    expect(t.has('gw', 'b1', 3)).toBe(true);
  });

  it('takes a jump to seq 2^53 - 1 for a restart of the sequence, not for trillions of holes', () => {
    const t = new SequenceTracker();
    for (const seq of [1, 2, 3, 5]) t.add('gw', 'b1', seq);
    t.add('gw', 'b1', Number.MAX_SAFE_INTEGER);
    expect(t.has('gw', 'b1', Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(t.holes('gw')).toBe(1); // seq 4, and nothing for the jump
    // The real sequence goes on, and its holes still count.
    t.add('gw', 'b1', 8);
    expect(t.holes('gw')).toBe(3);
    // A gap an outbox can hold is still holes.
    t.add('gw', 'b2', 1);
    t.add('gw', 'b2', MAX_SEQUENCE_GAP + 2);
    expect(t.holes('gw')).toBe(3 + MAX_SEQUENCE_GAP);
  });

  it('stays bounded, forgetting the oldest rather than ever refusing a new batch', () => {
    const t = new SequenceTracker();
    for (let seq = 0; seq < 5000; seq += 2) t.add('gw', 'b1', seq); // every other one: 2500 runs
    expect(t.has('gw', 'b1', 1)).toBe(false);
    expect(t.has('gw', 'b1', 4998)).toBe(true);
    for (let b = 0; b < 20; b++) t.add('gw', `boot-${b}`, 1);
    expect(t.has('gw', 'boot-19', 1)).toBe(true);
    expect(t.has('gw', 'boot-0', 1)).toBe(false); // forgotten: a late resend would be written again, harmlessly
  });
});
