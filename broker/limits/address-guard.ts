import type { Clock } from '../../core/clock.js';

/**
 * `connect-attempts`: more connections from the address than the limit (its
 * CONNECT is answered with a refusal the client can log); `connect-flood`:
 * twice the limit (closed at once, no MQTT work spent on it);
 * `failed-identities`: it failed logins for too many identities.
 */
export type AddressVerdict = 'ok' | 'connect-attempts' | 'connect-flood' | 'failed-identities';

export interface AddressGuardOptions {
  /** Connections per address per window. */
  attempts: number;
  /** Failed logins per (address, identity) per window; then that identity is refused from that address. */
  authFailures: number;
  /** Distinct identities with a failed login per address per window; then the whole address is refused. */
  failedIdentities: number;
  windowMs: number;
  clock: Clock;
}

interface Window {
  attempts: number[];
  /** Times of failed logins, per identity tried (the username, or the certificate's CN; "" for none). */
  failures: Map<string, number[]>;
}

/**
 * Brute-force and reconnect-storm protection per remote address, over a
 * sliding window. Many real devices share one address (a site's NAT, a
 * carrier-grade NAT of a mobile network), so wrong passwords are counted per
 * address *and* identity: ten wrong passwords for one identity refuse that
 * identity from that address, and the others behind it are still served. An
 * address that tries many identities (password spraying, a scan of usernames)
 * is refused as a whole.
 *
 * The address checks run when a connection is accepted, before any MQTT or TLS
 * work is spent on it; the identity check runs at CONNECT, before the secret
 * is hashed. Addresses are forgotten once their window is empty, so memory
 * stays bounded by the addresses seen in one window, and the identities kept
 * per address by `failedIdentities`.
 */
export class AddressGuard {
  private readonly byAddress = new Map<string, Window>();
  private lastSweep: number;

  constructor(private readonly o: AddressGuardOptions) {
    this.lastSweep = o.clock.now();
  }

  /** May a new connection from `address` go on to CONNECT? */
  admit(address: string): AddressVerdict {
    const now = this.o.clock.now();
    this.sweep(now);
    const w = this.window(address, now);
    if (w.failures.size >= this.o.failedIdentities) return 'failed-identities';
    // Past the limit, attempts still count (a client that keeps hammering stays refused), up to twice the limit:
    // those are told why at CONNECT; beyond that the address is flooding and is only closed.
    if (w.attempts.length >= 2 * this.o.attempts) return 'connect-flood';
    w.attempts.push(now);
    return w.attempts.length > this.o.attempts ? 'connect-attempts' : 'ok';
  }

  /**
   * Whether `address` failed logins for `failedIdentities` identities within
   * the window, without counting an attempt: for a listener that is not a
   * broker's (the hub's HTTP login), which refuses such an address per request.
   */
  refusesAddress(address: string): boolean {
    const w = this.byAddress.get(address);
    if (!w) return false;
    const now = this.o.clock.now();
    let live = 0;
    for (const times of w.failures.values()) if (this.live(times, now)) live++;
    return live >= this.o.failedIdentities;
  }

  /** May `identity` try to log in from `address`? False once it failed `authFailures` times within the window. */
  admitIdentity(address: string, identity: string): boolean {
    const w = this.byAddress.get(address);
    if (!w) return true;
    return (this.live(w.failures.get(identity), this.o.clock.now())?.length ?? 0) < this.o.authFailures;
  }

  authFailed(address: string, identity: string): void {
    const now = this.o.clock.now();
    const w = this.window(address, now);
    const times = w.failures.get(identity);
    if (times) times.push(now);
    // Past the limit the address is refused at accept anyway: no need to remember more identities.
    else if (w.failures.size < this.o.failedIdentities) w.failures.set(identity, [now]);
  }

  /** How many times `identity` failed from `address` within the window (for the log). */
  failuresOf(address: string, identity: string): number {
    return this.byAddress.get(address)?.failures.get(identity)?.length ?? 0;
  }

  get trackedAddresses(): number {
    return this.byAddress.size;
  }

  private window(address: string, now: number): Window {
    let w = this.byAddress.get(address);
    if (!w) {
      w = { attempts: [], failures: new Map() };
      this.byAddress.set(address, w);
    }
    const since = now - this.o.windowMs;
    while (w.attempts.length > 0 && w.attempts[0]! <= since) w.attempts.shift();
    for (const [identity, times] of w.failures) if (!this.live(times, now)) w.failures.delete(identity);
    return w;
  }

  /** Drops the times that left the window; undefined when none is left. */
  private live(times: number[] | undefined, now: number): number[] | undefined {
    if (!times) return undefined;
    const since = now - this.o.windowMs;
    while (times.length > 0 && times[0]! <= since) times.shift();
    return times.length > 0 ? times : undefined;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.o.windowMs) return;
    this.lastSweep = now;
    const since = now - this.o.windowMs;
    for (const [address, w] of this.byAddress) {
      const lastFailure = Math.max(0, ...[...w.failures.values()].map((t) => t.at(-1) ?? 0));
      if ((w.attempts.at(-1) ?? 0) <= since && lastFailure <= since) this.byAddress.delete(address);
    }
  }
}
