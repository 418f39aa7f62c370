import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { DeliveryLog, PendingDelivery, WebhookData } from './delivery-log.js';
import { postWebhook } from './http-post.js';
import { retryDelay } from './retry-delays.js';
import { signWebhook } from './standard-webhooks.js';

/** A fire department's webhook endpoint. */
export interface WebhookTarget {
  department: string;
  url: string;
  secret: string;
}

export interface WebhookDispatcherDeps {
  /** The webhook of each department, by department id. */
  targets: ReadonlyMap<string, WebhookTarget>;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Deliveries in progress and delivered keys on disk, so they survive a restart; without it, in memory. */
  log?: DeliveryLog;
  /** A department answered 2xx: transport delivery, which the alarm journal records apart from acknowledgement. */
  onDelivered?: (p: PendingDelivery<WebhookData>, at: number, attempts: number) => void;
}

const REQUEST_TIMEOUT_MS = 5000;
/** How many delivered keys to remember for recognising resends. */
const DELIVERED_MEMORY = 10_000;

interface Delivery {
  p: PendingDelivery<WebhookData>;
  target: WebhookTarget;
  body: string;
  attempt: number;
  timer?: NodeJS.Timeout;
}

/** The webhook body: Standard Webhooks' recommended `{type, timestamp, data}` envelope. */
export function webhookBody(data: WebhookData): string {
  return JSON.stringify({ type: `alarm.${data.class}.${data.state}`, timestamp: new Date(data.time).toISOString(), data });
}

/**
 * Sends dispatch messages to fire departments as signed Standard Webhooks,
 * each retried until the department answers 2xx: an alarm is never given up
 * on. The `webhook-id` is the message's key within its department (the event
 * id for an alert, so a resend is recognised by the receiver too).
 */
export class WebhookDispatcher {
  private readonly inFlight = new Map<string, Delivery>();
  private readonly delivered = new Set<string>();
  private stopped = false;

  constructor(private readonly d: WebhookDispatcherDeps) {}

  /**
   * Records (when not recorded yet) and starts one delivery; a key already
   * pending or delivered is a resend, counted and not sent twice.
   */
  send(p: PendingDelivery<WebhookData>): boolean {
    if (this.inFlight.has(p.key) || this.delivered.has(p.key) || this.d.log?.has(p.key)) {
      this.d.metrics.inc('cosafe_dispatch_duplicates_total', { department: p.department });
      return false;
    }
    this.d.log?.addPending(p);
    this.start(p);
    return true;
  }

  /** Starts a delivery the caller has already recorded in the log (in its own transaction). */
  start(p: PendingDelivery<WebhookData>): void {
    if (this.inFlight.has(p.key) || this.stopped) return;
    const target = this.d.targets.get(p.department);
    if (!target) {
      this.d.logger.error({ code: 'COSAFE_ERR_WEBHOOK_DELIVERY', department: p.department, key: p.key }, 'an alarm delivery names a fire department with no webhook configured; not sent');
      return;
    }
    const delivery: Delivery = { p, target, body: webhookBody(p.message), attempt: 0 };
    this.inFlight.set(p.key, delivery);
    void this.attempt(delivery);
  }

  /** Takes up the deliveries a crash or a stop interrupted. */
  resume(): void {
    for (const p of this.d.log?.pending('webhook') ?? []) {
      if (this.inFlight.has(p.key)) continue;
      this.d.logger.warn({ department: p.department, key: p.key }, 'resuming an alarm delivery interrupted by a restart');
      this.start(p as PendingDelivery<WebhookData>);
    }
  }

  /** Deliveries not yet taken by their department. */
  pendingCount(): number {
    return this.inFlight.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.inFlight.values()) clearTimeout(d.timer);
    if (this.inFlight.size) {
      this.d.logger.error({ pending: this.inFlight.size, resumedAtNextStart: this.d.log !== undefined }, 'stopping with alarm deliveries not yet acknowledged');
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    if (this.stopped) return;
    delivery.attempt++;
    const { p, target, body } = delivery;
    const id = p.key.slice(p.department.length + 1) || p.key;
    const headers = signWebhook(target.secret, id, Math.floor(this.d.clock.now() / 1000), body);
    let failure: string;
    try {
      const status = await postWebhook(target.url, { 'content-type': 'application/json', 'user-agent': 'cosafe', ...headers }, body, REQUEST_TIMEOUT_MS);
      if (status >= 200 && status < 300) {
        this.inFlight.delete(p.key);
        this.remember(p.key);
        try {
          this.d.log?.delivered(p.key);
        } catch (err) {
          // Delivered all the same; at worst it is sent once more after a restart.
          this.d.logger.warn({ err: (err as Error).message }, 'could not record a delivered alarm');
        }
        const now = this.d.clock.now();
        this.d.metrics.inc('cosafe_dispatch_delivered_total', { department: p.department, class: p.message.class });
        // From the device's own time: what a fire department waits, edge to answer, in production.
        this.d.metrics.observe('cosafe_alarm_delivery_latency_seconds', { class: p.message.class, channel: 'webhook' }, Math.max(0, now - p.message.time) / 1000);
        this.d.logger.info({ department: p.department, key: p.key, device: p.message.device, class: p.message.class, state: p.message.state, attempt: delivery.attempt }, 'alarm delivered to fire department');
        this.d.onDelivered?.(p, now, delivery.attempt);
        return;
      }
      failure = `HTTP ${status}`;
    } catch (err) {
      failure = (err as Error).message;
    }
    this.d.metrics.inc('cosafe_dispatch_failures_total', { department: p.department });
    const delay = retryDelay(delivery.attempt);
    this.d.logger.error(
      { code: 'COSAFE_ERR_WEBHOOK_DELIVERY', department: p.department, url: target.url, key: p.key, attempt: delivery.attempt, err: failure, retryInMs: delay },
      'alarm delivery failed; retrying',
    );
    if (this.stopped) return;
    delivery.timer = setTimeout(() => void this.attempt(delivery), delay);
  }

  private remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > DELIVERED_MEMORY) {
      const oldest = this.delivered.values().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
  }
}
