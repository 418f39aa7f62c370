import { HttpError, InfluxDB } from '@influxdata/influxdb-client';
import type { InfluxConfig } from '../../core/config.js';
import { REJECTED_STATUSES, parseRetryAfter, pingServer, rejectedAll, type WriteOutcome, type WriteTarget } from './write-outcome.js';

/** Longest a write request may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Writes over the v2 write API (/api/v2/write: InfluxDB 1.8+, 2.x, 3.x, and
 * servers that speak it, such as VictoriaMetrics) through
 * @influxdata/influxdb-client's transport. Its WriteApi is not used: that keeps
 * its own memory buffer and retries, and durability and retries are the
 * writer's (cloud-sync/influx/writer.ts), on disk.
 */
export function v2WriteTarget(config: InfluxConfig): WriteTarget {
  const client = new InfluxDB({ url: config.url, ...(config.token ? { token: config.token } : {}), timeout: REQUEST_TIMEOUT_MS });
  const params = new URLSearchParams({ bucket: config.bucket ?? config.database, precision: 'ms' });
  if (config.org) params.set('org', config.org);
  const path = `/api/v2/write?${params}`;

  const headers: Record<string, string> = config.token ? { Authorization: `Token ${config.token}` } : {};
  return {
    ping: (signal) => pingServer(config.url, headers, signal),
    async write(body, lines, signal): Promise<WriteOutcome> {
      try {
        await client.transport.request(path, body, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, signal });
        return { kind: 'written' };
      } catch (err) {
        if (!(err instanceof HttpError)) return { kind: 'retry', reason: (err as Error).message };
        const reason = `HTTP ${err.statusCode}: ${(err.body ?? err.message).slice(0, 1000)}`;
        if (REJECTED_STATUSES.has(err.statusCode)) return { kind: 'rejected', status: err.statusCode, reason, rejectedAll: rejectedAll(reason, lines) };
        const header = err.headers?.['retry-after'];
        const retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header);
        return { kind: 'retry', status: err.statusCode, reason, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      }
    },
  };
}
