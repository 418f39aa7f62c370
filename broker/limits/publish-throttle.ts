import type { Clock } from '../../core/clock.js';

/**
 * One client's publish rate: a token bucket (`rate` per second, up to `burst`
 * at once). A publish over the rate is not dropped but held back: Aedes reads
 * no more of that client's packets until the held ones are released, so the
 * backpressure reaches the client's TCP window and nobody else waits. Only a
 * client that piles up more than `maxHeld` publishes is cut off.
 */
export class PublishThrottle {
  private tokens: number;
  private last: number;
  private readonly held: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: { rate: number; burst: number; maxHeld: number; clock: Clock },
  ) {
    this.tokens = o.burst;
    this.last = o.clock.now();
  }

  /**
   * 'now': go ahead. 'held': `release` is called when the rate allows.
   * 'overflow': too many held; the caller ends the connection.
   */
  admit(release: () => void): 'now' | 'held' | 'overflow' {
    this.refill();
    if (this.held.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return 'now';
    }
    if (this.held.length >= this.o.maxHeld) return 'overflow';
    this.held.push(release);
    this.schedule();
    return 'held';
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Forgets what is held (the connection is gone) and stops the timer. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held.length = 0;
  }

  private refill(): void {
    const now = this.o.clock.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.last) / 1000) * this.o.rate);
    this.last = now;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.o.rate) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      // First in, first out: a client's messages keep their order.
      while (this.held.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.held.shift()!();
      }
      if (this.held.length > 0) this.schedule();
    }, wait);
    this.timer.unref();
  }
}
