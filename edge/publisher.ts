import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { topics, type AlarmEvent, type GatewayHealth, type GatewayStatus, type Reading, type ReadingBatch } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';

export interface PublisherOptions {
  brokerUrl: string;
  /** The gateway's login to the hub broker. */
  auth?: MqttClientAuth;
  site: string;
  gateway: string;
  batch: { maxReadings: number; maxDelayMs: number };
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
}

/**
 * The gateway's way to the hub: readings go in batches (one MQTT message carries
 * many readings), events go at once, both QoS 1. A retained status with a last
 * will tells the hub at once when the gateway dies.
 */
export class Publisher {
  readonly boot = randomUUID();
  private client: MqttClient | undefined;
  private pending: Reading[] = [];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private onlineSince = 0;
  private health: GatewayHealth | undefined;

  constructor(private readonly o: PublisherOptions) {}

  async start(): Promise<void> {
    const statusTopic = topics.status(this.o.site, this.o.gateway);
    const offline: GatewayStatus = { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'offline', boot: this.boot, since: this.o.clock.now() };
    this.client = mqtt.connect(this.o.brokerUrl, {
      ...mqttAuthOptions(this.o.auth),
      clientId: `cosafe-gw-${this.o.site}-${this.o.gateway}`,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      this.o.logger.info({ broker: this.o.brokerUrl, gateway: this.o.gateway }, 'gateway connected to hub');
      this.onlineSince = this.o.clock.now();
      this.publishStatus();
    });
    this.client.on('offline', () => this.o.logger.warn({ broker: this.o.brokerUrl }, 'gateway lost the hub; publishing is queued until it is back'));
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'gateway.credentials');
      if (hint) this.o.logger.error({ err: err.message, hint }, 'the hub refused the gateway');
      else this.o.logger.warn({ err: err.message }, 'gateway connection error');
    });
  }

  addReadings(readings: Reading[]): void {
    for (const r of readings) this.pending.push(r);
    if (this.pending.length >= this.o.batch.maxReadings) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.o.batch.maxDelayMs);
  }

  /** The retained status carries the gateway's health, so the hub shows it without asking. */
  publishStatus(health?: GatewayHealth): void {
    if (health) this.health = health;
    if (!this.client?.connected) return;
    const status: GatewayStatus = { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'online', boot: this.boot, since: this.onlineSince, ...(this.health ? { health: this.health } : {}) };
    this.client.publish(topics.status(this.o.site, this.o.gateway), JSON.stringify(status), { qos: 1, retain: true });
  }

  /** Alarm events do not wait for a batch: they are the reason this system exists. */
  publishEvent(event: AlarmEvent): void {
    this.send(topics.events(this.o.site, this.o.gateway), JSON.stringify(event), 'event');
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) {
      const readings = this.pending.splice(0, this.o.batch.maxReadings);
      const batch: ReadingBatch = {
        v: 1,
        gateway: this.o.gateway,
        site: this.o.site,
        boot: this.boot,
        seq: ++this.seq,
        sentAt: this.o.clock.now(),
        readings,
      };
      this.send(topics.readings(this.o.site, this.o.gateway), JSON.stringify(batch), 'readings', readings.length);
    }
  }

  async stop(): Promise<void> {
    this.flush();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.connected) {
      const offline: GatewayStatus = { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'offline', boot: this.boot, since: this.o.clock.now() };
      await client.publishAsync(topics.status(this.o.site, this.o.gateway), JSON.stringify(offline), { qos: 1, retain: true }).catch(() => {});
    }
    // end(false) waits for in-flight QoS 1 messages to be acknowledged.
    await client.endAsync(false);
  }

  private send(topic: string, payload: string, kind: 'readings' | 'event', count = 1): void {
    if (!this.client) return;
    this.client.publish(topic, payload, { qos: 1 }, (err) => {
      if (err) {
        this.o.metrics.inc('cosafe_edge_publish_failed_total', 'Publishes that failed', { kind });
        this.o.logger.error({ err: err.message, topic }, 'publish failed');
      } else {
        this.o.metrics.inc('cosafe_edge_published_total', 'Readings and events acknowledged by the hub (PUBACK)', { kind }, count);
      }
    });
  }
}
