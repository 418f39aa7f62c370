import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { DeliveryLog, MqttPublish, PendingDelivery } from './delivery-log.js';
import { retryDelay } from './retry-delays.js';

export interface MqttDispatcherDeps {
  /** Publishes at QoS 1 and resolves on the broker's PUBACK. */
  publish(topic: string, payload: string): Promise<void>;
  logger: Logger;
  metrics: Metrics;
  log?: DeliveryLog;
  onDelivered?: (p: PendingDelivery<MqttPublish>, at: number) => void;
  now(): number;
}

/**
 * Publishes dispatch messages (`dispatch/<district>/alarms/<site>`) and
 * gateway commands, each recorded in the delivery log until the broker has
 * acknowledged it (QoS 1 PUBACK [MQTT-4.3.2]) and retried until then; the
 * broker keeps it for the department's persistent session from there on.
 */
export class MqttDispatcher {
  private readonly inFlight = new Map<string, { p: PendingDelivery<MqttPublish>; attempt: number; timer?: NodeJS.Timeout }>();
  private stopped = false;

  constructor(private readonly d: MqttDispatcherDeps) {}

  start(p: PendingDelivery<MqttPublish>): void {
    if (this.inFlight.has(p.key) || this.stopped) return;
    const entry = { p, attempt: 0 } as { p: PendingDelivery<MqttPublish>; attempt: number; timer?: NodeJS.Timeout };
    this.inFlight.set(p.key, entry);
    void this.attempt(entry);
  }

  resume(): void {
    for (const p of this.d.log?.pending('mqtt') ?? []) this.start(p as PendingDelivery<MqttPublish>);
  }

  pendingCount(): number {
    return this.inFlight.size;
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.inFlight.values()) clearTimeout(e.timer);
  }

  private async attempt(entry: { p: PendingDelivery<MqttPublish>; attempt: number; timer?: NodeJS.Timeout }): Promise<void> {
    if (this.stopped) return;
    entry.attempt++;
    const { p } = entry;
    try {
      await this.d.publish(p.message.topic, JSON.stringify(p.message.payload));
      this.inFlight.delete(p.key);
      try {
        this.d.log?.delivered(p.key);
      } catch (err) {
        this.d.logger.warn({ err: (err as Error).message }, 'could not record a delivered dispatch message');
      }
      this.d.onDelivered?.(p, this.d.now());
    } catch (err) {
      if (this.stopped) return;
      this.d.metrics.inc('cosafe_dispatch_mqtt_failures_total');
      const delay = retryDelay(entry.attempt);
      this.d.logger.error({ code: 'COSAFE_ERR_MQTT_DISPATCH', topic: p.message.topic, attempt: entry.attempt, err: (err as Error).message, retryInMs: delay }, 'could not publish a dispatch message; retrying');
      entry.timer = setTimeout(() => void this.attempt(entry), delay);
    }
  }
}
