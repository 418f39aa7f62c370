import { describe, expect, it } from 'vitest';
import { leaseShare, partitionOf, planLeases } from '../../../cloud-sync/partitions/partition.js';

describe('the partition of a site', () => {
  it('is FNV-1a of the id modulo the count: the same in every process and version', () => {
    // FNV-1a 32 of "a" is 0xe40c292c, of "foobar" 0xbf9cf968 (the reference values of the algorithm).
    expect(partitionOf('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(partitionOf('a', 8)).toBe(0xe40c292c % 8);
    expect(partitionOf('foobar', 2 ** 31)).toBe(0xbf9cf968 % 2 ** 31);
    expect(partitionOf('bakery-12', 8)).toBe(partitionOf('bakery-12', 8));
    for (const site of ['depot-9', 'x', 'Bäckerei-1']) {
      const k = partitionOf(site, 16);
      expect(k).toBeGreaterThanOrEqual(0);
      expect(k).toBeLessThan(16);
      expect(Number.isInteger(k)).toBe(true);
    }
  });

  it('spreads sites with a common prefix over every partition', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOf(`bakery-${i}`, 8)]!++;
    // 1000 each on average; a skewed hash (a sum of characters) puts most in a few.
    for (const n of counts) expect(n).toBeGreaterThan(800);
    for (const n of counts) expect(n).toBeLessThan(1200);
  });

  it('puts everything in partition 0 of a single partition', () => {
    expect(partitionOf('anything', 1)).toBe(0);
  });
});

describe('the lease arithmetic', () => {
  it('gives each worker at most ceil(P / live workers)', () => {
    expect(leaseShare(8, 1)).toBe(8);
    expect(leaseShare(8, 2)).toBe(4);
    expect(leaseShare(8, 3)).toBe(3);
    expect(leaseShare(8, 9)).toBe(1);
    // No live worker counted yet (the worker's own entry not written): as if alone.
    expect(leaseShare(8, 0)).toBe(8);
  });

  it('claims free partitions up to the share, never one another worker holds', () => {
    const holders = ['b', undefined, undefined, 'b', undefined, undefined, undefined, undefined];
    const plan = planLeases({ count: 8, liveWorkers: 2, holders, me: 'a' });
    expect(plan.release).toEqual([]);
    expect(plan.claim).toHaveLength(4);
    for (const k of plan.claim) expect(holders[k]).toBeUndefined();
  });

  it('a lone worker claims every partition', () => {
    const plan = planLeases({ count: 8, liveWorkers: 1, holders: new Array(8).fill(undefined), me: 'a' });
    expect([...plan.claim].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('releases what is beyond the share when another worker comes, and claims nothing', () => {
    const plan = planLeases({ count: 8, liveWorkers: 2, holders: new Array(8).fill('a'), me: 'a' });
    expect(plan).toEqual({ claim: [], release: [4, 5, 6, 7] });
  });

  it('claims only the rest of its share when it already holds some', () => {
    const holders = ['a', 'a', 'a', undefined, undefined, undefined, 'b', 'b'];
    const plan = planLeases({ count: 8, liveWorkers: 2, holders, me: 'a' });
    expect(plan.release).toEqual([]);
    expect(plan.claim).toHaveLength(1);
  });

  it('takes over the partitions of a dead worker once only it is live', () => {
    // b's leases expired (undefined) and b left the live set: a's share is all of them.
    const holders = ['a', 'a', 'a', 'a', undefined, undefined, undefined, undefined];
    expect(planLeases({ count: 8, liveWorkers: 1, holders, me: 'a' }).claim.sort()).toEqual([4, 5, 6, 7]);
  });

  it('lets the workers together hold every partition whatever their number', () => {
    for (let live = 1; live <= 10; live++) expect(leaseShare(8, live) * live).toBeGreaterThanOrEqual(8);
  });
});
