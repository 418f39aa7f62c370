/** What became of one write request. */
export type WriteOutcome =
  | { kind: 'written' }
  /** Nothing wrong with the points; try again later (server down, overloaded, 5xx, 429, timeouts). */
  | { kind: 'retry'; reason: string; status?: number; retryAfterMs?: number }
  /**
   * The server refused points as invalid (400, 413, 422): retrying the same body
   * cannot help. `rejectedAll` when the server said that every line was refused.
   */
  | { kind: 'rejected'; reason: string; status: number; rejectedAll: boolean };

/** One way to write line protocol to a server (v1 /write, v2 /api/v2/write). */
export interface WriteTarget {
  /** Writes newline-separated line protocol with millisecond timestamps. */
  write(body: string, lines: number, signal: AbortSignal): Promise<WriteOutcome>;
  /** Whether the server answers `GET /ping` (InfluxDB 1.x, 2.x, 3.x): cheap, so it can be asked often while writes back off. */
  ping(signal: AbortSignal): Promise<boolean>;
}

/** `GET <url>/ping` answered with a 2xx (InfluxDB says 204). */
export async function pingServer(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<boolean> {
  try {
    const res = await fetch(`${url.replace(/\/$/, '')}/ping`, { headers, signal });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Statuses that say the points themselves are bad. */
export const REJECTED_STATUSES = new Set([400, 413, 422]);

/**
 * Retry-After as milliseconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Whether a 400 says every line was refused. InfluxDB 1.x writes the valid
 * points of a request and answers "partial write: ... dropped=N"; InfluxDB 2.x
 * "partial write error (N written)". Without either, it is not known.
 */
export function rejectedAll(message: string, lines: number): boolean {
  const dropped = /dropped=(\d+)/.exec(message);
  if (dropped) return Number(dropped[1]) >= lines;
  const written = /\((\d+) written\)/.exec(message);
  if (written) return Number(written[1]) === 0;
  return false;
}
