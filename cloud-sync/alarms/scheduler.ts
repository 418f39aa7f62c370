import type { Clock } from '../../core/clock.js';

/**
 * Runs a function at a time of the injected clock, keyed so that a new due
 * time replaces the old one. The due times themselves live in the alarm store;
 * this only wakes the lifecycle up. Tests drive a manual one instead of waiting.
 */
export interface Scheduler {
  schedule(key: string, at: number, run: () => void): void;
  cancel(key: string): void;
  stop(): void;
}

/** The longest setTimeout Node accepts; later due times are reached in hops. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class TimerScheduler implements Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly clock: Clock) {}

  schedule(key: string, at: number, run: () => void): void {
    this.cancel(key);
    const arm = () => {
      const wait = at - this.clock.now();
      if (wait <= 0) {
        this.timers.delete(key);
        run();
        return;
      }
      this.timers.set(key, setTimeout(arm, Math.min(wait, MAX_DELAY_MS)));
    };
    // Never synchronously: the caller may be inside a transaction.
    this.timers.set(key, setTimeout(arm, Math.max(0, Math.min(at - this.clock.now(), MAX_DELAY_MS))));
  }

  cancel(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
