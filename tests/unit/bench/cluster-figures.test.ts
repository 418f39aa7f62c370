import { describe, expect, it } from 'vitest';
import { CLUSTER_PREFIXES } from '../../../bench/cluster-phase.js';
import { cpuSecondsPer100k, lateStreak, leasesSettled, ratio, readingsPerCore, sitesPerPartition } from '../../../bench/cluster-figures.js';
import { partitionOf } from '../../../cloud-sync/partitions/partition.js';
import { PUBLISHERS } from '../../../bench/phases.js';
import { brokerForPublisher, loadSite } from '../../../bench/workload.js';

describe('the cluster phase splits its publishers across the brokers', () => {
  const A = 'mqtt://127.0.0.1:1001';
  const B = 'mqtt://127.0.0.1:1002';
  const C = 'mqtt://127.0.0.1:1003';

  it('gives every broker an equal share of the bench publishers (at most one more), in turn', () => {
    for (const brokers of [[A], [A, B], [A, B, C]]) {
      const counts = new Map<string, number>();
      for (let i = 0; i < PUBLISHERS; i++) {
        const url = brokerForPublisher(i, brokers);
        counts.set(url, (counts.get(url) ?? 0) + 1);
      }
      // Every broker carries load, none more than one publisher above another.
      expect([...counts.keys()].sort()).toEqual([...brokers].sort());
      expect(Math.max(...counts.values()) - Math.min(...counts.values())).toBeLessThanOrEqual(1);
    }
    expect(Array.from({ length: 4 }, (_, i) => brokerForPublisher(i, [A, B]))).toEqual([A, B, A, B]);
  });

  it('refuses no broker at all, or a publisher that is not an index, instead of sending the load nowhere', () => {
    expect(() => brokerForPublisher(0, [])).toThrow(/no broker/);
    expect(() => brokerForPublisher(-1, [A])).toThrow(/publisher must be an index/);
    expect(() => brokerForPublisher(1.5, [A])).toThrow(/publisher must be an index/);
  });
});

describe('the cluster phase figures', () => {
  it('gives CPU seconds per 100,000 readings per process, and the system without the bench, its publishers and the rest of the machine', () => {
    const cpu = {
      'broker-0': { cpuMs: 20_000, corePercent: 80 },
      'cloud-sync': { cpuMs: 10_000, corePercent: 40 },
      redis: { cpuMs: 5_000, corePercent: 20 },
      publishers: { cpuMs: 8_000, corePercent: 32 },
      bench: { cpuMs: 1_000, corePercent: 4 },
      others: { cpuMs: 3_000, corePercent: 12 },
    };
    const per = cpuSecondsPer100k(cpu, 200_000);
    expect(per['broker-0']).toBe(10);
    expect(per.redis).toBe(2.5);
    expect(per.publishers).toBe(4);
    // 20 + 10 + 5 s of the system's processes over 2 x 100,000 readings.
    expect(per.system).toBe(17.5);
    expect(() => cpuSecondsPer100k(cpu, 0)).toThrow(/readings must be positive/);
  });

  it('extrapolates what one core of a process carries only from a process that was busy', () => {
    // 30,000 readings/s with Redis at 25 % of a core: one core of Redis would carry 120,000/s.
    expect(readingsPerCore(30_000, 25)).toBe(120_000);
    expect(readingsPerCore(30_000, 2)).toBeUndefined();
    expect(readingsPerCore(30_000, undefined)).toBeUndefined();
  });

  it('compares with the embedded hub only where there is a figure to compare with', () => {
    expect(ratio(45_000, 30_000)).toBe(1.5);
    expect(ratio(45_000, 0)).toBeUndefined();
    expect(ratio(Number.NaN, 30_000)).toBeUndefined();
  });

  it('counts only the alarms late in a row at the end, so one slow alarm among delivered ones does not stop the probe', () => {
    const on = { late: false };
    const late = { late: true };
    expect(lateStreak([])).toBe(0);
    expect(lateStreak([late, on, on])).toBe(0);
    expect(lateStreak([on, late, on, late, late])).toBe(2);
    expect(lateStreak([late, late, late])).toBe(3);
  });
});

describe('the two-workers variant: leases settled, sites spread', () => {
  it('counts the leases settled only when every partition is held once and no worker is past its share', () => {
    expect(leasesSettled([[0], [1]], 2)).toBe(true);
    expect(leasesSettled([[0, 3], [1, 2]], 4)).toBe(true);
    // The first worker took them all, the second has not got its share yet.
    expect(leasesSettled([[0, 1], []], 2)).toBe(false);
    // A partition nobody holds, or one held twice (a hand-over under way).
    expect(leasesSettled([[0], []], 2)).toBe(false);
    expect(leasesSettled([[0, 1], [1]], 2)).toBe(false);
    expect(leasesSettled([[0], [2]], 2)).toBe(false);
  });

  it("counts the sites per partition with the workers' own hash, so an empty partition is seen before the run", () => {
    const mod = (site: string, count: number) => Number(site.slice(-1)) % count;
    expect(sitesPerPartition(['s-0', 's-1', 's-2', 's-3', 's-4'], 2, mod)).toEqual([3, 2]);
    expect(sitesPerPartition(['s-0', 's-2'], 2, mod)).toEqual([2, 0]);
    // The bench's own load (10 publishers of the variant's prefix) falls 5 and 5 into the two workers' partitions.
    expect(sitesPerPartition(Array.from({ length: PUBLISHERS }, (_, n) => loadSite(CLUSTER_PREFIXES.variant(2), n)), 2, partitionOf)).toEqual([5, 5]);
  });
});
