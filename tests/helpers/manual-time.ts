import type { Scheduler } from '../../cloud-sync/alarms/scheduler.js';
import type { Clock } from '../../core/clock.js';

/** A clock the test moves, and a scheduler that runs what falls due as it moves: no sleeping. */
export class ManualTime implements Clock, Scheduler {
  private t: number;
  private readonly due = new Map<string, { at: number; run: () => void }>();

  constructor(start = Date.UTC(2026, 11, 1, 12, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  schedule(key: string, at: number, run: () => void): void {
    this.due.set(key, { at, run });
  }

  cancel(key: string): void {
    this.due.delete(key);
  }

  stop(): void {
    this.due.clear();
  }

  /** When `key` is due, if it is scheduled. */
  dueAt(key: string): number | undefined {
    return this.due.get(key)?.at;
  }

  /** Moves the clock forward, running everything that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.due.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].run();
    }
    this.t = end;
  }
}
