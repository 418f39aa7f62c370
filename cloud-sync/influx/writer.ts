import type { InfluxConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { Claim, PointKind, WriteBuffer } from './write-buffer.js';
import type { WriteTarget } from './write-outcome.js';

export interface InfluxWriterDeps {
  config: Pick<InfluxConfig, 'batchSize' | 'drainBatchSize' | 'flushIntervalMs' | 'maxInFlight' | 'maxRetryDelayMs'>;
  buffer: WriteBuffer;
  target: WriteTarget;
  logger: Logger;
  metrics: Metrics;
  /** Which lane's buffer this writer drains (for its gauge). */
  lane?: 'alarm' | 'telemetry';
  now?: () => number;
  /**
   * The wait before retry `attempt` (1, 2, ...), at most `capMs`; default full
   * jitter: random(0, capMs). Tests make it long, to show what ends it early.
   */
  retryDelay?: (attempt: number, capMs: number) => number;
}

/** First retry delay cap; doubles per failed attempt up to `maxRetryDelayMs`. */
const BASE_RETRY_MS = 200;
/** A server's Retry-After is honoured up to this. */
const MAX_RETRY_AFTER_MS = 600_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How long `stop()` lets requests in flight finish (their points stay buffered either way). */
const STOP_GRACE_MS = 2000;
const DROP_LOG_EVERY_MS = 10_000;
/** While writes back off because InfluxDB was unreachable, it is asked this often whether it is back. */
const PING_EVERY_MS = 500;
const PING_TIMEOUT_MS = 1000;

/** `status` absent: no HTTP answer at all (refused, reset, timed out): the server was unreachable. */
type Delivery = { ok: true } | { ok: false; reason: string; status?: number; retryAfterMs?: number };

/**
 * Moves line protocol from the durable buffer to InfluxDB.
 *
 * - Batches by size (`batchSize` points) and by time (`flushIntervalMs`), with up
 *   to `maxInFlight` requests at once. While a backlog drains (more buffered
 *   than one round of requests), requests grow to `drainBatchSize` points: fewer,
 *   larger writes drain several times faster than live ingest arrives.
 * - A failed write (network, 5xx, 429, 503, timeouts) is released back to the
 *   buffer and retried after an exponential backoff with full jitter
 *   (delay = random(0, min(max, base * 2^attempt))), or after the server's
 *   Retry-After if that is longer. After a failure one request probes; full
 *   concurrency resumes when it succeeds.
 * - While it backs off after InfluxDB was unreachable (no HTTP answer), it
 *   asks `/ping` every PING_EVERY_MS; once InfluxDB answers, the backoff ends
 *   and writes resume at once, not after the rest of a delay of up to
 *   `maxRetryDelayMs`. A server that answered (5xx, 429, Retry-After) is not
 *   pinged: it is up, and the backoff is what it asked for.
 * - Points the server rejects as invalid (400, 413, 422) are isolated by halving
 *   the request until the offending lines are alone; those are set aside in the
 *   dead-letter table, counted and logged, and the rest is written. Nothing is
 *   retried forever, nothing valid is blocked behind an invalid point.
 * - Writes are idempotent: a point's time is the reading's time, so a request
 *   written twice (a retry after a lost response, a replay after a crash) stores
 *   each point once.
 */
export class InfluxWriter {
  private inFlight = 0;
  private attempt = 0;
  private probing = false;
  private lastError: string | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** The wait of the backoff in progress, for /health. */
  private backoffMs: number | undefined;
  private stopGauge: (() => void) | undefined;
  private stopped = false;
  private forceFlush = false;
  private readonly abort = new AbortController();
  private readonly settled = new Set<() => void>();
  private drops = { sinceLog: 0, loggedAt: 0 };
  private readonly now: () => number;

  constructor(private readonly d: InfluxWriterDeps) {
    this.now = d.now ?? Date.now;
  }

  start(): void {
    this.d.buffer.open();
    const { points } = this.d.buffer.stats();
    if (points > 0) this.d.logger.info({ points }, 'InfluxDB buffer holds points from before the restart; writing them');
    // Read at every scrape: the buffer grows while the writer waits to retry, and nothing else would say so.
    this.stopGauge = this.d.metrics.collect('cosafe_influx_buffered_points', () => this.d.buffer.stats().points, { lane: this.d.lane ?? 'telemetry' });
    this.pump();
  }

  /** Stores lines in the buffer; true once they are on disk (then they will reach InfluxDB). */
  append(lines: readonly string[], kind: PointKind): boolean {
    let dropped: number;
    try {
      dropped = this.d.buffer.append(lines, kind, this.now());
    } catch (err) {
      this.d.metrics.inc('cosafe_influx_buffer_errors_total', {}, lines.length);
      this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_BUFFER', err: (err as Error).message }, 'InfluxDB buffer write failed');
      return false;
    }
    if (dropped > 0) this.dropped(dropped);
    this.pump();
    return true;
  }

  health(): { ok: boolean; buffered: number; rejected: number; detail?: string; backoffMs?: number } {
    const s = this.d.buffer.stats();
    return {
      ok: this.lastError === undefined,
      buffered: s.points,
      rejected: s.setAside,
      ...(this.lastError ? { detail: this.lastError } : {}),
      ...(this.backoffMs !== undefined ? { backoffMs: this.backoffMs } : {}),
    };
  }

  /** Writes everything buffered without waiting for the batch delay; resolves when done or after `timeoutMs`. */
  async flush(timeoutMs = 10_000): Promise<void> {
    const deadline = this.now() + timeoutMs;
    this.forceFlush = true;
    try {
      while ((this.d.buffer.stats().points > 0 || this.inFlight > 0) && this.now() < deadline) {
        this.pump();
        await this.nextSettle(50);
      }
    } finally {
      this.forceFlush = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.pingTimer);
    this.stopGauge?.();
    const deadline = this.now() + STOP_GRACE_MS;
    while (this.inFlight > 0 && this.now() < deadline) await this.nextSettle(50);
    this.abort.abort();
    while (this.inFlight > 0) await this.nextSettle(50);
    this.d.buffer.close();
  }

  private pump(): void {
    if (this.stopped || this.retryTimer) return;
    const { config, buffer } = this.d;
    const limit = this.probing ? 1 : config.maxInFlight;
    while (this.inFlight < limit) {
      const s = buffer.stats();
      if (s.unclaimedPoints <= 0 && s.released === 0) break;
      const backlog = s.points > config.batchSize * config.maxInFlight;
      const size = backlog ? Math.max(config.batchSize, config.drainBatchSize) : config.batchSize;
      if (s.released === 0 && s.unclaimedPoints < size && !this.forceFlush) {
        // Not a full batch yet: wait until the oldest line has waited flushIntervalMs.
        const waited = this.now() - (buffer.oldestUnclaimedAt() ?? this.now());
        if (waited < config.flushIntervalMs) {
          this.flushTimer ??= setTimeout(() => {
            this.flushTimer = undefined;
            this.pump();
          }, config.flushIntervalMs - waited);
          break;
        }
      }
      const claim = buffer.claim(size);
      if (!claim) break;
      this.inFlight++;
      void this.send(claim);
    }
  }

  private async send(claim: Claim): Promise<void> {
    let result: Delivery;
    try {
      result = await this.deliver(claim.chunks, claim.points);
    } catch (err) {
      result = { ok: false, reason: (err as Error).message };
    }
    this.inFlight--;
    if (result.ok) {
      this.d.buffer.complete(claim);
      if (this.lastError !== undefined) this.d.logger.info('InfluxDB writes succeed again');
      this.lastError = undefined;
      this.attempt = 0;
      this.probing = false;
    } else {
      this.d.buffer.release(claim);
      this.retryLater(result);
    }
    for (const wake of this.settled) wake();
    this.settled.clear();
    this.pump();
  }

  /**
   * Writes `points` lines, given as chunks of newline-joined lines; on a
   * rejection, splits them into lines and halves them until the invalid lines
   * are alone and set aside.
   */
  private async deliver(chunks: string[], points: number): Promise<Delivery> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    const outcome = await this.d.target.write(chunks.join('\n'), points, signal);
    if (outcome.kind === 'written') {
      this.d.metrics.inc('cosafe_influx_points_written_total', {}, points);
      return { ok: true };
    }
    if (outcome.kind === 'retry') {
      return {
        ok: false,
        reason: outcome.reason,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
      };
    }
    // Rejected as invalid (rare): only now one string per line.
    const lines = chunks.length === points ? chunks : chunks.flatMap((c) => c.split('\n'));
    if (lines.length === 1 || outcome.rejectedAll) {
      this.d.buffer.setAside(lines, outcome.status, outcome.reason, this.now());
      this.d.metrics.inc('cosafe_influx_points_rejected_total', {}, lines.length);
      this.d.logger.error(
        { code: 'COSAFE_ERR_INFLUX_REJECTED', status: outcome.status, body: outcome.reason, points: lines.length, first: lines[0]?.slice(0, 300) },
        'InfluxDB rejected points as invalid; set aside, not retried',
      );
      return { ok: true };
    }
    const mid = lines.length >> 1;
    for (const half of [lines.slice(0, mid), lines.slice(mid)]) {
      const r = await this.deliver(half, half.length);
      if (!r.ok) return r;
    }
    return { ok: true };
  }

  private retryLater(failure: { reason: string; status?: number; retryAfterMs?: number }): void {
    this.d.metrics.inc('cosafe_influx_write_errors_total');
    if (this.lastError === undefined) this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_WRITE', err: failure.reason }, 'InfluxDB write failed; buffering on disk and retrying with backoff');
    this.lastError = failure.reason;
    this.probing = true;
    if (this.retryTimer || this.stopped) return;
    this.attempt++;
    const cap = Math.min(this.d.config.maxRetryDelayMs, BASE_RETRY_MS * 2 ** Math.min(this.attempt, 30));
    const delay = this.d.retryDelay ? this.d.retryDelay(this.attempt, cap) : Math.random() * cap;
    const wait = Math.max(Math.min(failure.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS), delay);
    this.backoffMs = Math.round(wait);
    this.retryTimer = setTimeout(() => this.endBackoff(), wait);
    if (failure.status === undefined && failure.retryAfterMs === undefined && wait > PING_EVERY_MS) this.schedulePing();
  }

  private endBackoff(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.pingTimer);
    this.retryTimer = this.pingTimer = this.backoffMs = undefined;
    this.pump();
  }

  /** Asks InfluxDB whether it is back, while the backoff lasts. */
  private schedulePing(): void {
    this.pingTimer = setTimeout(() => {
      this.pingTimer = undefined;
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(PING_TIMEOUT_MS)]);
      void this.d.target.ping(signal).then((up) => {
        if (this.stopped || !this.retryTimer) return;
        if (!up) return this.schedulePing();
        this.d.logger.info('InfluxDB answers /ping again; resuming writes');
        this.endBackoff();
      });
    }, PING_EVERY_MS);
  }

  private dropped(points: number): void {
    this.d.metrics.inc('cosafe_influx_points_dropped_total', {}, points);
    this.drops.sinceLog += points;
    const now = this.now();
    if (now - this.drops.loggedAt >= DROP_LOG_EVERY_MS) {
      this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_BUFFER_FULL', dropped: this.drops.sinceLog }, 'InfluxDB buffer full: dropped the oldest readings');
      this.drops = { sinceLog: 0, loggedAt: now };
    }
  }

  private nextSettle(maxMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, maxMs);
      this.settled.add(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
