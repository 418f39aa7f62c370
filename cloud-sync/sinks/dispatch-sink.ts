import type { AlarmEvent } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { FireDepartmentConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { DeliveryLog } from '../dispatch/delivery-log.js';
import { WebhookDispatcher } from '../dispatch/webhook-dispatcher.js';
import type { Sink } from './sink.js';

export interface DispatchSinkDeps {
  departments: readonly FireDepartmentConfig[];
  /** The delivery log file (dataDir/dispatch.db). */
  logPath: string;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

/**
 * Alarms to fire departments: the event lane's first sink, so the fire
 * department never waits for cloud-sync's bookkeeping. `onEvent` records the
 * delivery on disk and returns; the webhook is sent (and retried) after.
 */
export class DispatchSink implements Sink {
  readonly name = 'dispatch';
  private readonly log: DeliveryLog;
  private readonly dispatcher: WebhookDispatcher;

  constructor(private readonly d: DispatchSinkDeps) {
    this.log = new DeliveryLog(d.logPath);
    this.dispatcher = new WebhookDispatcher({ departments: d.departments, logger: d.logger, metrics: d.metrics, clock: d.clock, log: this.log });
  }

  async start(): Promise<void> {
    this.log.open();
    this.dispatcher.resume();
    if (this.d.departments.length === 0) this.d.logger.warn('no fire department configured: alarms are stored but sent to nobody');
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
    this.log.close();
  }

  onEvent(event: AlarmEvent): boolean {
    try {
      this.dispatcher.dispatch(event);
      return true;
    } catch (err) {
      // The delivery log could not record it: not acknowledged, so the broker offers it again.
      this.d.logger.error({ code: 'COSAFE_ERR_WEBHOOK_DELIVERY', eventId: event.eventId, err: (err as Error).message }, 'could not record an alarm delivery; it will be offered again');
      return false;
    }
  }

  /** Deliveries not yet acknowledged by their department. */
  pendingCount(): number {
    return this.dispatcher.pendingCount();
  }
}
