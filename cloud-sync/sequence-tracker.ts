/** Boots remembered per gateway: a gateway replays at most a few earlier runs' batches. */
const MAX_BOOTS = 8;
/** Runs of received sequence numbers remembered per boot; past it the oldest are forgotten. */
const MAX_RUNS = 1024;
/**
 * A gap wider than this between two runs is not batches on their way: no outbox
 * holds that many (the default keeps 1,000,000 readings, one batch at least
 * each). It is a sequence that started again elsewhere (a gateway whose state
 * was restored, a stray or hostile publisher sending seq = 2^53 - 1), and
 * counts as a restart, not as trillions of holes.
 */
export const MAX_SEQUENCE_GAP = 1_000_000;

/**
 * Which reading batches of each gateway cloud-sync has seen, by (boot, seq).
 *
 * Batches do not arrive in sequence order: a gateway's outbox replays a
 * backlog (of this boot or of earlier ones) interleaved with live batches, and
 * resends what was in flight when a connection dropped. So a batch is a
 * duplicate only if that very (boot, seq) was seen, not if a higher seq was.
 * Seen numbers are kept as sorted runs [from, to]; holes between runs are
 * batches not (yet) received: a backlog still on its way, or batches the
 * gateway dropped (it raises that as trouble).
 *
 * A jump far beyond the others (MAX_SEQUENCE_GAP) is taken as the sequence
 * starting again: the batch is new, and the gap is not counted as holes.
 *
 * Memory is bounded: past the limits the oldest runs and boots are forgotten,
 * so a very late resend of one of them is taken as new and written again, which
 * is harmless (writes are idempotent); a batch is never wrongly taken for a
 * duplicate.
 */
export class SequenceTracker {
  private readonly gateways = new Map<string, Map<string, [number, number][]>>();

  /** Whether this batch was seen before. */
  has(gateway: string, boot: string, seq: number): boolean {
    const runs = this.gateways.get(gateway)?.get(boot);
    if (!runs) return false;
    const run = runs[firstEndingAtOrAfter(runs, seq)];
    return run !== undefined && run[0] <= seq && seq <= run[1];
  }

  /** Records a batch as seen (once it is stored). */
  add(gateway: string, boot: string, seq: number): void {
    let boots = this.gateways.get(gateway);
    if (!boots) this.gateways.set(gateway, (boots = new Map()));
    let runs = boots.get(boot);
    if (runs) boots.delete(boot); // re-inserted below: the most recently used boot goes last
    else runs = [];
    boots.set(boot, runs);
    if (boots.size > MAX_BOOTS) boots.delete(boots.keys().next().value!);

    const i = firstEndingAtOrAfter(runs, seq - 1);
    const run = runs[i];
    if (run && run[0] <= seq && seq <= run[1]) return;
    if (run && run[1] === seq - 1) {
      run[1] = seq;
      const next = runs[i + 1];
      if (next && next[0] === seq + 1) {
        run[1] = next[1];
        runs.splice(i + 1, 1);
      }
    } else if (run && run[0] === seq + 1) run[0] = seq;
    else runs.splice(i, 0, [seq, seq]);
    if (runs.length > MAX_RUNS) runs.shift();
  }

  /**
   * Batches missing between runs of one gateway (all remembered boots). A gap
   * wider than MAX_SEQUENCE_GAP is a restart of the sequence and counts nothing.
   */
  holes(gateway: string): number {
    let missing = 0;
    for (const runs of this.gateways.get(gateway)?.values() ?? []) {
      for (let i = 1; i < runs.length; i++) {
        const gap = runs[i]![0] - runs[i - 1]![1] - 1;
        if (gap <= MAX_SEQUENCE_GAP) missing += gap;
      }
    }
    return missing;
  }
}

/** Index of the first run whose end is >= n (runs are sorted and disjoint). */
function firstEndingAtOrAfter(runs: [number, number][], n: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]![1] < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
