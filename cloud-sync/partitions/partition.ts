/**
 * Which cloud-sync worker handles which site (README "Cloud-sync workers"):
 * the pure arithmetic, apart from Redis and MQTT so that it is tested alone.
 *
 * Aedes has no shared subscriptions, so the work is split explicitly: the
 * sites fall into a fixed number of partitions, each with persistent broker
 * sessions of its own, and a worker consumes the sessions of the partitions
 * whose leases it holds.
 */

/**
 * The partition of a site: FNV-1a (32 bit) of its id, modulo the number of
 * partitions. Stable across processes, versions and machines (no seed, no
 * dependence on the JavaScript engine), so every worker and every restart
 * agrees on it; FNV-1a spreads short ids with common prefixes (`bakery-12`,
 * `bakery-13`) well, which a plain sum of characters does not.
 */
export function partitionOf(site: string, count: number): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(site, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

/** At most this many partitions per worker, so that they spread over the live workers. */
export function leaseShare(count: number, liveWorkers: number): number {
  return Math.ceil(count / Math.max(1, liveWorkers));
}

export interface LeasePlan {
  /** Free partitions to try to claim (SET NX; another worker may win the race). */
  claim: number[];
  /** Partitions this worker holds beyond its share: to be let go of, so another worker can take them. */
  release: number[];
}

/**
 * What a worker should do with the leases at one renewal, from who holds each
 * partition now (`holders[k]`, undefined when free) and how many workers are
 * live. Claims start at an offset of the worker's own id, so that workers
 * starting together try different partitions first; a release gives up the
 * highest-numbered partitions it holds, so that repeated plans are stable.
 */
export function planLeases(p: { count: number; liveWorkers: number; holders: readonly (string | undefined)[]; me: string }): LeasePlan {
  const share = leaseShare(p.count, p.liveWorkers);
  const mine: number[] = [];
  for (let k = 0; k < p.count; k++) if (p.holders[k] === p.me) mine.push(k);
  if (mine.length > share) return { claim: [], release: mine.slice(share) };
  const start = partitionOf(p.me, p.count);
  const claim: number[] = [];
  for (let i = 0; i < p.count && claim.length < share - mine.length; i++) {
    const k = (start + i) % p.count;
    if (p.holders[k] === undefined) claim.push(k);
  }
  return { claim, release: [] };
}
