import { type MqttClient } from 'mqtt';
import { connectMqtt, type BrokerUrls } from '../core/mqtt-reconnect.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';

export interface RetainedPublisherDeps {
  brokerUrl: BrokerUrls;
  auth?: MqttClientAuth;
  /** Its own MQTT client id: `public`, `agency`. */
  name: string;
  /** Names the client with `name` (cloud-sync/partitions/worker-id.ts): two workers with one id would take turns throwing each other off. */
  instance?: string;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Keeps retained messages on the broker as cloud-sync wants them: the last
 * value set for a topic is what the broker ends up with, whatever the
 * connection did in between. A publish that fails is tried again on the next
 * connect (latest value wins, older ones are not sent); an empty value clears
 * the retained message [MQTT-3.3.1-10]. Every change also reaches the
 * clients subscribed at that moment (QoS 1).
 */
export class RetainedPublisher {
  private client: MqttClient | undefined;
  private readonly desired = new Map<string, string>();
  private readonly pending = new Set<string>();
  private readonly inFlight = new Set<string>();
  private settled: (() => void)[] = [];

  constructor(private readonly d: RetainedPublisherDeps) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(): void {
    this.client = connectMqtt(this.d.brokerUrl, {
      ...mqttAuthOptions(this.d.auth),
      clientId: `cosafe-cloud-sync-${this.d.name}-${this.d.instance ?? process.env.COSAFE_INSTANCE ?? 'main'}`,
      clean: true,
      connectTimeout: 5000,
    });
    this.client.on('connect', () => this.flush());
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'cloudSync.credentials');
      this.d.logger.warn({ err: err.message, ...(hint ? { hint } : {}) }, `${this.d.name} feed broker connection error`);
    });
  }

  /** The retained message of `topic` is to be `payload` (empty: none). */
  set(topic: string, payload: string): void {
    if (this.desired.get(topic) === payload && !this.pending.has(topic)) return;
    this.desired.set(topic, payload);
    this.pending.add(topic);
    this.flush();
  }

  /** Resolves once everything set so far is on the broker (tests, shutdown). */
  async idle(): Promise<void> {
    if (this.pending.size === 0 && this.inFlight.size === 0) return;
    await new Promise<void>((resolve) => this.settled.push(resolve));
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
    this.client = undefined;
    for (const resolve of this.settled.splice(0)) resolve();
  }

  private flush(): void {
    const client = this.client;
    if (!client?.connected) return;
    for (const topic of [...this.pending]) {
      if (this.inFlight.has(topic)) continue;
      const payload = this.desired.get(topic)!;
      this.pending.delete(topic);
      this.inFlight.add(topic);
      let failed = false;
      client
        .publishAsync(topic, payload, { qos: 1, retain: true })
        .then(() => {
          if (payload === '' && this.desired.get(topic) === '') this.desired.delete(topic);
        })
        .catch((err: Error) => {
          // Tried again on the next connect, with whatever is desired by then.
          failed = true;
          this.pending.add(topic);
          this.d.metrics.inc('cosafe_feed_publish_failures_total', { feed: this.d.name });
          this.d.logger.warn({ code: 'COSAFE_ERR_FEED_PUBLISH', topic, err: err.message }, `${this.d.name} feed message not published; it goes again on reconnect`);
        })
        .finally(() => {
          this.inFlight.delete(topic);
          // Set again while in flight: the newer value goes now.
          if (!failed && this.pending.has(topic)) this.flush();
          if (this.pending.size === 0 && this.inFlight.size === 0) for (const resolve of this.settled.splice(0)) resolve();
        });
    }
  }
}
