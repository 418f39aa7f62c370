/**
 * Exponential backoff with full jitter ("Exponential Backoff and Jitter", AWS
 * Architecture Blog, 2015): the n-th wait is random(0, min(cap, base * 2^n)).
 * The jitter spreads thousands of clients that lost the same broker at the same
 * moment over the whole window, so the broker that takes them over (and hashes
 * a secret per login) sees a steady trickle, not one wave per period.
 */
export interface BackoffPolicy {
  /** The first window, ms. */
  baseMs: number;
  /** The largest window, ms. */
  capMs: number;
  /** A number in [0, 1); injected by tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly policy: BackoffPolicy) {
    if (!(policy.baseMs > 0) || !(policy.capMs >= policy.baseMs)) throw new Error(`invalid backoff: base ${policy.baseMs} ms, cap ${policy.capMs} ms`);
  }

  /** The next wait; every call widens the window until `capMs`. */
  next(): number {
    const window = Math.min(this.policy.capMs, this.policy.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor((this.policy.random ?? Math.random)() * window);
  }

  /** After a success: the next failure starts from the first window again. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** What every cosafe MQTT client uses to reconnect to the hub unless told otherwise: 0-0.5 s at first, then up to 30 s. */
export const RECONNECT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

/**
 * The longest a gateway with a fire alarm to send waits between attempts to
 * reach the hub (core/mqtt-reconnect.ts `urgent`): NFPA 72 gives a
 * supervising station 90 s from initiation to receipt, EN 54-21 10 s for the
 * transmission path; 30 s of backoff after an outage would spend most of either.
 */
export const ALARM_RECONNECT_CAP_MS = 2000;

/**
 * cloud-sync's alarm lane and its dispatch link (acknowledgements) reconnect
 * within 0-2 s whatever the outage's length: they are a handful of clients per
 * hub, not a fleet, and every second they are away an alarm waits at the broker.
 */
export const ALARM_LANE_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: ALARM_RECONNECT_CAP_MS };
