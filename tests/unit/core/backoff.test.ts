import { describe, expect, it } from 'vitest';
import { Backoff, RECONNECT_BACKOFF } from '../../../core/backoff.js';

describe('reconnect backoff with full jitter', () => {
  it('doubles the window on every failure up to the cap, and waits a random part of it', () => {
    const top = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0.999999 });
    const windows = Array.from({ length: 10 }, () => top.next());
    // Just under each window: 500, 1000, 2000, ... then the cap.
    expect(windows).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999]);
    const bottom = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0 });
    expect(bottom.next()).toBe(0);
  });

  it('spreads clients that lost the same broker over the whole window', () => {
    let seed = 42;
    // A small deterministic generator (mulberry32) so the test cannot flake.
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const waits = Array.from({ length: 1000 }, () => {
      const b = new Backoff({ baseMs: 1000, capMs: 1000, random });
      return b.next();
    });
    const buckets = [0, 0, 0, 0];
    for (const w of waits) buckets[Math.floor(w / 250)]! += 1;
    // No quarter of the window gets a wave: each holds roughly a quarter of the clients.
    for (const n of buckets) expect(n).toBeGreaterThan(150);
  });

  it('starts from the first window again after a success', () => {
    const b = new Backoff({ ...RECONNECT_BACKOFF, random: () => 0.999999 });
    b.next();
    b.next();
    b.next();
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.next()).toBe(RECONNECT_BACKOFF.baseMs - 1);
  });

  it('refuses a policy that cannot back off', () => {
    expect(() => new Backoff({ baseMs: 0, capMs: 10 })).toThrow(/invalid backoff/);
    expect(() => new Backoff({ baseMs: 100, capMs: 10 })).toThrow(/invalid backoff/);
  });
});
