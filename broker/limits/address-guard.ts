import type { Clock } from '../../core/clock.js';

export type AddressVerdict = 'ok' | 'connect-attempts' | 'auth-failures';

interface Window {
  attempts: number[];
  failures: number[];
}

/**
 * Brute-force and reconnect-storm protection per remote address, over a sliding
 * window: at most `attempts` connections, and no more connections at all once
 * `authFailures` logins have failed, until the window has passed. Checked when
 * a connection is accepted, before any MQTT or TLS work is spent on it.
 * Addresses are forgotten once their window is empty, so memory stays bounded
 * by the addresses seen in one window.
 */
export class AddressGuard {
  private readonly byAddress = new Map<string, Window>();
  private lastSweep: number;

  constructor(private readonly o: { attempts: number; authFailures: number; windowMs: number; clock: Clock }) {
    this.lastSweep = o.clock.now();
  }

  admit(address: string): AddressVerdict {
    const now = this.o.clock.now();
    this.sweep(now);
    const w = this.window(address, now);
    if (w.failures.length >= this.o.authFailures) return 'auth-failures';
    if (w.attempts.length >= this.o.attempts) return 'connect-attempts';
    w.attempts.push(now);
    return 'ok';
  }

  authFailed(address: string): void {
    const now = this.o.clock.now();
    this.window(address, now).failures.push(now);
  }

  get trackedAddresses(): number {
    return this.byAddress.size;
  }

  private window(address: string, now: number): Window {
    let w = this.byAddress.get(address);
    if (!w) {
      w = { attempts: [], failures: [] };
      this.byAddress.set(address, w);
    }
    const since = now - this.o.windowMs;
    while (w.attempts.length > 0 && w.attempts[0]! <= since) w.attempts.shift();
    while (w.failures.length > 0 && w.failures[0]! <= since) w.failures.shift();
    return w;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.o.windowMs) return;
    this.lastSweep = now;
    const since = now - this.o.windowMs;
    for (const [address, w] of this.byAddress) {
      if ((w.attempts.at(-1) ?? 0) <= since && (w.failures.at(-1) ?? 0) <= since) this.byAddress.delete(address);
    }
  }
}
