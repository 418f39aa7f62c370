/**
 * The arithmetic of the cluster phase's figures, apart from the processes
 * that produce them, so that it can be checked on its own
 * (tests/unit/bench/cluster-figures.test.ts).
 */
type Cpu = Record<string, { cpuMs: number; corePercent: number }>;

/** Who is not the system under test: the load generator, the bench itself, the rest of the machine. */
const NOT_SYSTEM = new Set(['bench', 'publishers', 'others']);

/**
 * CPU seconds each process spent per 100,000 readings, and `system`: the sum
 * over the processes of the system (brokers, cloud-sync, gateway, Redis,
 * influxd; not the bench, its publishers nor the rest of the machine).
 */
export function cpuSecondsPer100k(cpu: Cpu, readings: number): Record<string, number> {
  if (!(readings > 0)) throw new Error(`cpuSecondsPer100k: readings must be positive, not ${readings}`);
  const per = (ms: number) => Math.round((ms / 1000 / (readings / 100_000)) * 100) / 100;
  const out: Record<string, number> = {};
  let system = 0;
  for (const [name, c] of Object.entries(cpu)) {
    out[name] = per(c.cpuMs);
    if (!NOT_SYSTEM.has(name)) system += c.cpuMs;
  }
  out.system = per(system);
  return out;
}

/**
 * Readings per second one core of `process` would carry at the rate measured,
 * were it the only limit: `readingsPerSecond` / its share of a core. The
 * sizing table's "what one Redis carries" and "what one broker carries";
 * undefined for a process that was (nearly) idle, whose share says nothing.
 */
export function readingsPerCore(readingsPerSecond: number, corePercent: number | undefined): number | undefined {
  if (corePercent === undefined || corePercent < 5) return undefined;
  return Math.round(readingsPerSecond / (corePercent / 100));
}

/** `value / base`, to three places; undefined when there is no base to compare with. */
export function ratio(value: number, base: number): number | undefined {
  if (!(base > 0) || !Number.isFinite(value)) return undefined;
  return Math.round((value / base) * 1000) / 1000;
}

/**
 * Alarms at the end of `samples` in a row that did not arrive in time. The
 * phase stops sending alarms after a few: a path that delivers none is broken,
 * not slow, and waiting out every timeout would take the run past its watchdog.
 */
export function lateStreak(samples: readonly { late: boolean }[]): number {
  let n = 0;
  for (let i = samples.length - 1; i >= 0 && samples[i]!.late; i--) n++;
  return n;
}

/**
 * Whether cloud-sync workers' leases have settled: every one of `count`
 * partitions held by exactly one worker, and no worker past its share
 * (`ceil(count / workers)`, as the workers themselves plan it). `held`: the
 * partitions each worker says it holds (its /health).
 */
export function leasesSettled(held: readonly (readonly number[])[], count: number): boolean {
  const share = Math.ceil(count / Math.max(1, held.length));
  const all = held.flat();
  return held.every((ks) => ks.length <= share) && all.length === count && new Set(all).size === count && all.every((k) => Number.isInteger(k) && k >= 0 && k < count);
}

/**
 * How many of `sites` fall into each of `count` partitions (`partitionOf`):
 * the two-workers variant checks that its publishers' sites spread over every
 * partition, or one worker would idle and the variant measure one worker.
 */
export function sitesPerPartition(sites: readonly string[], count: number, partitionOf: (site: string, count: number) => number): number[] {
  const out = Array.from({ length: count }, () => 0);
  for (const s of sites) out[partitionOf(s, count)]!++;
  return out;
}
