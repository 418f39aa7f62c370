import type { AlarmEvent } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { FireDepartmentConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { DeliveryLog } from './delivery-log.js';
import { signWebhook } from './standard-webhooks.js';

export interface WebhookDispatcherDeps {
  departments: readonly FireDepartmentConfig[];
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Deliveries in progress and delivered ids on disk, so they survive a restart; without it, in memory. */
  log?: DeliveryLog;
}

/** Retry delays: a failed alarm delivery is tried again within seconds, then every 10 s until it goes through. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 10_000];
const REQUEST_TIMEOUT_MS = 5000;
/** How many delivered ids to remember for recognising resends. */
const DELIVERED_MEMORY = 10_000;

interface Delivery {
  department: FireDepartmentConfig;
  event: AlarmEvent;
  body: string;
  attempt: number;
  timer?: NodeJS.Timeout;
}

/** The webhook body: Standard Webhooks' recommended `{type, timestamp, data}` envelope. */
export function webhookBody(event: AlarmEvent): string {
  return JSON.stringify({ type: `alarm.${event.class}.${event.state}`, timestamp: new Date(event.time).toISOString(), data: event });
}

/**
 * Sends alarm events to fire departments as signed webhooks. An event is sent
 * once per department (a resend of the same event id is recognised) and retried
 * until the department answers 2xx: an alarm is never given up on. With a
 * delivery log, `dispatch` records the delivery on disk before it returns, so
 * cloud-sync acknowledges an alarm upstream only once it is durable here, and
 * `resume` takes up what a crash interrupted.
 */
export class WebhookDispatcher {
  private readonly pending = new Map<string, Delivery>();
  private readonly delivered = new Set<string>();
  private stopped = false;

  constructor(private readonly d: WebhookDispatcherDeps) {}

  dispatch(event: AlarmEvent): void {
    for (const department of this.d.departments) {
      if (!department.classes.includes(event.class)) continue;
      const key = `${department.id}/${event.eventId}`;
      if (this.pending.has(key) || this.delivered.has(key) || this.d.log?.has(key)) {
        this.d.metrics.inc('cosafe_dispatch_duplicates_total', { department: department.id });
        continue;
      }
      this.d.log?.addPending(key, department.id, event);
      this.start(key, department, event);
    }
  }

  /** Takes up the deliveries a crash or a stop interrupted. */
  resume(): void {
    for (const p of this.d.log?.pending() ?? []) {
      const department = this.d.departments.find((d) => d.id === p.department);
      if (!department) {
        this.d.logger.error({ department: p.department, eventId: p.event.eventId }, 'an interrupted alarm delivery names a fire department no longer configured; not sent');
        continue;
      }
      if (this.pending.has(p.key)) continue;
      this.d.logger.warn({ department: department.id, eventId: p.event.eventId, device: p.event.device }, 'resuming an alarm delivery interrupted by a restart');
      this.start(p.key, department, p.event);
    }
  }

  private start(key: string, department: FireDepartmentConfig, event: AlarmEvent): void {
    const delivery: Delivery = { department, event, body: webhookBody(event), attempt: 0 };
    this.pending.set(key, delivery);
    void this.attempt(key, delivery);
  }

  /** Deliveries not yet acknowledged by their department. */
  pendingCount(): number {
    return this.pending.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.pending.values()) clearTimeout(d.timer);
    if (this.pending.size) {
      this.d.logger.error({ pending: this.pending.size, resumedAtNextStart: this.d.log !== undefined }, 'stopping with alarm deliveries not yet acknowledged');
    }
  }

  private async attempt(key: string, delivery: Delivery): Promise<void> {
    if (this.stopped) return;
    delivery.attempt++;
    const { department, event, body } = delivery;
    const headers = signWebhook(department.secret, event.eventId, Math.floor(this.d.clock.now() / 1000), body);
    let failure: string;
    try {
      const res = await fetch(department.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'cosafe', ...headers },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.ok) {
        this.pending.delete(key);
        this.remember(key);
        try {
          this.d.log?.delivered(key);
        } catch (err) {
          // Delivered all the same; at worst it is sent once more after a restart.
          this.d.logger.warn({ err: (err as Error).message }, 'could not record a delivered alarm');
        }
        this.d.metrics.inc('cosafe_dispatch_delivered_total', { department: department.id, class: event.class });
        // From the device's own time: what a fire department waits, edge to answer, in production.
        this.d.metrics.observe('cosafe_alarm_delivery_latency_seconds', { class: event.class, channel: 'webhook' }, Math.max(0, this.d.clock.now() - event.time) / 1000);
        this.d.logger.info({ department: department.id, eventId: event.eventId, device: event.device, class: event.class, state: event.state, attempt: delivery.attempt }, 'alarm delivered to fire department');
        return;
      }
      failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as Error).message;
    }
    this.d.metrics.inc('cosafe_dispatch_failures_total', { department: department.id });
    const delay = RETRY_DELAYS_MS[Math.min(delivery.attempt - 1, RETRY_DELAYS_MS.length - 1)] ?? 10_000;
    this.d.logger.error(
      { code: 'COSAFE_ERR_WEBHOOK_DELIVERY', department: department.id, url: department.url, eventId: event.eventId, attempt: delivery.attempt, err: failure, retryInMs: delay },
      'alarm delivery failed; retrying',
    );
    if (this.stopped) return;
    delivery.timer = setTimeout(() => void this.attempt(key, delivery), delay);
  }

  private remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > DELIVERED_MEMORY) {
      const oldest = this.delivered.values().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
  }
}
