import type { Logger } from './logger.js';
import type { Clock } from './clock.js';

/**
 * A flood of refused connections or denied publishes must be visible without
 * flooding the log: the first occurrence per key is logged at once, then at most
 * one line per `everyMs` that says how many were not logged in between.
 * Counting is the caller's job (every occurrence, in /metrics).
 */
export class ThrottledLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly everyMs = 10_000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.write('warn', key, fields, message);
  }

  write(level: 'info' | 'warn' | 'error', key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.everyMs) {
      entry.suppressed++;
      return;
    }
    // Bounded: a flood from many addresses forgets its old keys rather than growing.
    if (this.last.size >= 10_000) this.last.clear();
    this.last.set(key, { at: now, suppressed: 0 });
    this.logger[level]({ ...fields, ...(entry?.suppressed ? { notLoggedSince: entry.suppressed } : {}) }, message);
  }
}
