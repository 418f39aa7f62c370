import type { AlarmEvent, ReadingBatch } from '../../broker/contract/index.js';
import type { InfluxConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { HistoryQuery, ReadingStore, StoreHealth, StoredReading } from '../reading-store.js';
import { eventLine, readingLines } from './line-protocol.js';

export interface InfluxStoreDeps {
  config: InfluxConfig;
  logger: Logger;
  metrics: Metrics;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

/**
 * Writes readings to InfluxDB 1.x over the v1 `/write` API (what Debian's
 * influxd 1.6 speaks; 1.8+, 2.x and 3.x accept it too) and reads them back with
 * InfluxQL. Batches by size and by time, keeps several requests in flight, and
 * retries with exponential backoff and jitter while the server is down, holding
 * points in a bounded memory buffer (oldest dropped first, and counted).
 */
export class InfluxV1Store implements ReadingStore {
  private buffer: string[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  private stopped = false;
  private readonly idle = new Set<() => void>();
  private readonly auth: Record<string, string>;

  constructor(private readonly d: InfluxStoreDeps) {
    const { username, password } = d.config;
    this.auth = username ? { Authorization: `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` } : {};
  }

  async start(): Promise<void> {
    // CREATE DATABASE is idempotent. If InfluxDB is not up yet, writes retry until it is.
    try {
      await this.influxql(`CREATE DATABASE "${this.d.config.database.replace(/"/g, '\\"')}"`, 'POST');
      this.d.logger.info({ url: this.d.config.url, database: this.d.config.database }, 'writing readings to InfluxDB');
    } catch (err) {
      this.lastError = (err as Error).message;
      this.d.logger.warn({ url: this.d.config.url, err: this.lastError }, 'InfluxDB not reachable yet; buffering until it is');
    }
  }

  writeBatch(batch: ReadingBatch): void {
    readingLines(batch, this.buffer);
    this.afterAppend();
  }

  writeEvent(event: AlarmEvent): void {
    this.buffer.push(eventLine(event));
    this.afterAppend();
  }

  health(): StoreHealth {
    return { kind: 'influxdb', ok: this.lastError === undefined, buffered: this.buffer.length, ...(this.lastError ? { detail: this.lastError } : {}) };
  }

  async latest(filter: { site?: string; device?: string }): Promise<StoredReading[]> {
    const where = [filter.site ? `site = ${quoteLiteral(filter.site)}` : '', filter.device ? `device = ${quoteLiteral(filter.device)}` : '']
      .filter(Boolean)
      .join(' AND ');
    // Not last(): with several selectors InfluxQL 1.x reports time 0. LIMIT applies per series.
    const rows = await this.select(`SELECT value, quality, unit FROM reading${where ? ` WHERE ${where}` : ''} GROUP BY site, device, metric ORDER BY time DESC LIMIT 1`);
    return rows.sort((a, b) => a.device.localeCompare(b.device) || a.metric.localeCompare(b.metric));
  }

  async history(q: HistoryQuery): Promise<StoredReading[]> {
    const since = q.since ?? Date.now() - 3_600_000;
    const limit = Math.min(q.limit ?? 1000, 10_000);
    const site = q.site ? ` AND site = ${quoteLiteral(q.site)}` : '';
    return this.select(
      `SELECT value, quality, unit FROM reading WHERE device = ${quoteLiteral(q.device)} AND metric = ${quoteLiteral(q.metric)}${site} AND time >= ${since}ms GROUP BY site, device, metric ORDER BY time DESC LIMIT ${limit}`,
    );
  }

  /** Writes everything buffered, waiting at most `timeoutMs`. */
  async flush(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.buffer.length > 0 || this.inFlight > 0) && Date.now() < deadline) {
      this.pump();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.idle.add(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    if (this.buffer.length) this.d.logger.error({ points: this.buffer.length }, 'stopped with points not yet written to InfluxDB');
  }

  private afterAppend(): void {
    const overflow = this.buffer.length - this.d.config.maxBufferedPoints;
    if (overflow > 0) {
      // Oldest first: the newest data is what a person looks at during an incident.
      this.buffer.splice(0, overflow);
      this.d.metrics.inc('cosafe_influx_points_dropped_total', 'Points dropped because the buffer was full while InfluxDB was unreachable', {}, overflow);
      this.d.logger.error({ dropped: overflow }, 'InfluxDB buffer full: dropped the oldest points');
    }
    if (this.buffer.length >= this.d.config.batchSize) this.pump();
    else this.timer ??= setTimeout(() => this.pump(), this.d.config.flushIntervalMs);
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.retryTimer) return;
    while (this.inFlight < this.d.config.maxInFlight && this.buffer.length > 0) {
      const lines = this.buffer.splice(0, this.d.config.batchSize);
      this.inFlight++;
      void this.post(lines).finally(() => {
        this.inFlight--;
        for (const wake of this.idle) wake();
        this.idle.clear();
        if (this.buffer.length >= this.d.config.batchSize || (this.buffer.length > 0 && this.inFlight === 0)) this.pump();
        else if (this.buffer.length > 0) this.timer ??= setTimeout(() => this.pump(), this.d.config.flushIntervalMs);
      });
    }
  }

  private async post(lines: string[]): Promise<void> {
    const { url, database } = this.d.config;
    const endpoint = `${url.replace(/\/$/, '')}/write?db=${encodeURIComponent(database)}&precision=ms`;
    try {
      const res = await fetch(endpoint, { method: 'POST', body: lines.join('\n'), headers: this.auth, signal: AbortSignal.timeout(15_000) });
      if (res.status === 204 || res.ok) {
        await res.body?.cancel();
        this.d.metrics.inc('cosafe_influx_points_written_total', 'Points InfluxDB accepted', {}, lines.length);
        if (this.lastError) this.d.logger.info('InfluxDB writes succeed again');
        this.lastError = undefined;
        this.backoffMs = 0;
        return;
      }
      const text = (await res.text()).slice(0, 500);
      if (res.status === 400) {
        // Invalid points: retrying cannot help. Set aside and reported, not blocking the rest.
        this.d.metrics.inc('cosafe_influx_points_rejected_total', 'Points InfluxDB rejected as invalid (HTTP 400)', {}, lines.length);
        this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_REJECTED', status: res.status, body: text, points: lines.length }, 'InfluxDB rejected points');
        return;
      }
      this.retryLater(lines, `HTTP ${res.status}: ${text}`, Number(res.headers.get('retry-after')) * 1000 || 0);
    } catch (err) {
      this.retryLater(lines, (err as Error).message, 0);
    }
  }

  private retryLater(lines: string[], reason: string, retryAfterMs: number): void {
    this.buffer.unshift(...lines);
    this.d.metrics.inc('cosafe_influx_write_errors_total', 'Write requests to InfluxDB that failed and will be retried');
    if (this.lastError === undefined) this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_WRITE', err: reason }, 'InfluxDB write failed; retrying with backoff');
    this.lastError = reason;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, this.backoffMs * 2));
    // Full jitter, so many hubs recovering together do not hit InfluxDB in step.
    const wait = Math.max(retryAfterMs, Math.round(this.backoffMs / 2 + (Math.random() * this.backoffMs) / 2));
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, wait);
  }

  private async influxql(q: string, method: 'GET' | 'POST'): Promise<InfluxQueryResult> {
    const params = new URLSearchParams({ q, db: this.d.config.database, epoch: 'ms' });
    const base = `${this.d.config.url.replace(/\/$/, '')}/query`;
    const res = await fetch(method === 'GET' ? `${base}?${params}` : base, {
      method,
      headers: { ...this.auth, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(method === 'POST' ? { body: params.toString() } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as InfluxQueryResult;
    const error = body.error ?? body.results?.find((r) => r.error)?.error;
    if (!res.ok || error) throw new Error(`InfluxDB query failed (HTTP ${res.status}): ${error ?? 'no detail'}`);
    return body;
  }

  private async select(q: string): Promise<StoredReading[]> {
    const body = await this.influxql(q, 'GET');
    const out: StoredReading[] = [];
    for (const series of body.results?.[0]?.series ?? []) {
      const col = (name: string) => series.columns.indexOf(name);
      const [ti, vi, qi, ui] = [col('time'), col('value'), col('quality'), col('unit')];
      for (const row of series.values) {
        out.push({
          site: series.tags?.site ?? '',
          device: series.tags?.device ?? '',
          metric: series.tags?.metric ?? '',
          time: row[ti] as number,
          value: row[vi] as number,
          quality: String(row[qi] ?? ''),
          unit: String(row[ui] ?? ''),
        });
      }
    }
    return out;
  }
}

interface InfluxQueryResult {
  error?: string;
  results?: { error?: string; series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[] }[];
}

/** InfluxQL string literal. */
function quoteLiteral(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
