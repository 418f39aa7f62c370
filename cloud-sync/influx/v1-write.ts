import type { InfluxConfig } from '../../core/config.js';
import { REJECTED_STATUSES, parseRetryAfter, pingServer, rejectedAll, type WriteOutcome, type WriteTarget } from './write-outcome.js';

/** HTTP basic auth for InfluxDB 1.x, when a user is configured. */
export function v1AuthHeaders(config: InfluxConfig): Record<string, string> {
  const { username, password } = config;
  return username ? { Authorization: `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` } : {};
}

/**
 * Writes over InfluxDB 1.x's /write API (what Debian's influxd 1.6 speaks;
 * 1.8+, 2.x and 3.x accept it too).
 */
export function v1WriteTarget(config: InfluxConfig): WriteTarget & { createDatabase(signal?: AbortSignal): Promise<void> } {
  const base = config.url.replace(/\/$/, '');
  const headers = v1AuthHeaders(config);
  const endpoint = `${base}/write?db=${encodeURIComponent(config.database)}&precision=ms`;

  const createDatabase = async (signal?: AbortSignal) => {
    // CREATE DATABASE is idempotent.
    const res = await fetch(`${base}/query`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q: `CREATE DATABASE "${config.database.replace(/"/g, '\\"')}"` }).toString(),
      signal: signal ?? AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`CREATE DATABASE failed: HTTP ${res.status}`);
  };

  return {
    createDatabase,
    ping: (signal) => pingServer(base, headers, signal),
    async write(body, lines, signal): Promise<WriteOutcome> {
      let res: Response;
      try {
        res = await fetch(endpoint, { method: 'POST', body, headers, signal });
      } catch (err) {
        return { kind: 'retry', reason: (err as Error).message };
      }
      if (res.ok) {
        await res.body?.cancel();
        return { kind: 'written' };
      }
      const text = (await res.text().catch(() => '')).slice(0, 1000);
      if (REJECTED_STATUSES.has(res.status)) return { kind: 'rejected', status: res.status, reason: text, rejectedAll: rejectedAll(text, lines) };
      if (res.status === 404 && text.includes('database not found')) {
        // InfluxDB came up empty (or was down when cloud-sync started): create it, then the retry goes through.
        await createDatabase(signal).catch(() => {});
      }
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      return { kind: 'retry', status: res.status, reason: `HTTP ${res.status}: ${text}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    },
  };
}
