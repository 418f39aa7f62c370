import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { ALARM_ACK_COMMAND, AlarmAckCommand, decodeMessage, subscriptions, topics, type AlarmEvent, type GatewayHealth, type GatewayStatus, type Reading } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { Outbox, type OutboxMessage, type OutboxStats } from './outbox.js';

export interface PublisherOptions {
  brokerUrl: string;
  /** The gateway's login to the hub broker. */
  auth?: MqttClientAuth;
  site: string;
  gateway: string;
  batch: { maxReadings: number; maxDelayMs: number };
  outbox: { path: string; maxTelemetryReadings: number; maxInFlight: number; fsyncEvents: boolean };
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Called when the outbox was full and dropped its oldest readings. */
  onTelemetryDropped?: (dropped: number) => void;
}

/** How long `stop()` waits for messages in flight to be acknowledged (they stay in the outbox anyway). */
const STOP_GRACE_MS = 1000;

/**
 * The gateway's way to the hub. Readings and events go into the durable outbox
 * first (edge/outbox.ts) and count as accepted once they are there; from there
 * they are published with QoS 1, at most `maxInFlight` messages unacknowledged,
 * and leave the outbox on the hub's PUBACK (mqtt.js calls the publish callback
 * on PUBACK [MQTT-4.3.2]). While the hub is unreachable nothing is published;
 * messages in flight when the connection drops are sent again by mqtt.js after
 * the reconnect, everything else from the outbox. A retained status with a last
 * will tells the hub at once when the gateway dies.
 */
export class Publisher {
  /** Changes every start, so cloud-sync does not take a new run's sequence for duplicates of the last one. */
  readonly boot = randomUUID();
  private client: MqttClient | undefined;
  private readonly outbox: Outbox;
  private sealTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private lastError: string | undefined;
  private onlineSince = 0;
  private health: GatewayHealth | undefined;

  constructor(private readonly o: PublisherOptions) {
    this.outbox = new Outbox({
      path: o.outbox.path,
      site: o.site,
      gateway: o.gateway,
      boot: this.boot,
      maxTelemetryReadings: o.outbox.maxTelemetryReadings,
      batchMaxReadings: o.batch.maxReadings,
      fsyncEvents: o.outbox.fsyncEvents,
    });
  }

  async start(): Promise<void> {
    this.outbox.open(this.o.clock.now());
    const backlog = this.outbox.stats();
    if (backlog.events || backlog.readings) this.o.logger.info({ events: backlog.events, readings: backlog.readings }, 'outbox holds messages from before the restart; sending them');
    this.updateGauges();
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
      this.o.logger.info({ broker: this.o.brokerUrl, gateway: this.o.gateway, outbox: this.outbox.stats() }, 'gateway connected to hub');
      this.onlineSince = this.o.clock.now();
      this.publishStatus();
      this.outbox.markBacklog();
      this.pump();
      // The hub tells the site when a fire department acknowledged one of its alarms.
      this.client?.subscribe(subscriptions.gatewayCommands(this.o.site, this.o.gateway), { qos: 1 });
    });
    this.client.on('message', (topic, payload) => {
      if (topic !== topics.gatewayCommand(this.o.site, this.o.gateway, ALARM_ACK_COMMAND)) return;
      const ack = decodeMessage(AlarmAckCommand, payload);
      if (!ack.ok) return this.o.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error: ack.error }, 'command does not match the contract; ignored');
      const a = ack.value;
      this.o.logger.warn({ device: a.device, condition: a.condition, by: a.acknowledgedBy, operator: a.operator, channel: a.channel, at: new Date(a.at).toISOString() }, 'a fire department acknowledged the alarm');
    });
    this.client.on('offline', () => this.o.logger.warn({ broker: this.o.brokerUrl }, 'gateway lost the hub; readings and events wait in the outbox until it is back'));
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'gateway.credentials');
      if (hint) this.o.logger.error({ err: err.message, hint }, 'the hub refused the gateway');
      else this.o.logger.warn({ err: err.message }, 'gateway connection error');
    });
  }

  /** Accepts readings: once this returns they are on disk (see Outbox), and will reach the hub. */
  addReadings(readings: Reading[]): void {
    let dropped = 0;
    try {
      dropped = this.outbox.addReadings(readings, this.o.clock.now());
      this.lastError = undefined;
    } catch (err) {
      this.outboxFailed(err, readings.length, 'readings');
      return;
    }
    if (dropped > 0) {
      this.o.metrics.inc('cosafe_edge_outbox_dropped_total', {}, dropped);
      this.o.onTelemetryDropped?.(dropped);
    }
    this.scheduleSeal();
    this.pump();
    this.updateGauges();
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
    try {
      this.outbox.addEvent(event);
      this.lastError = undefined;
    } catch (err) {
      this.outboxFailed(err, 1, 'event');
      return;
    }
    this.pump();
    this.updateGauges();
  }

  stats(): OutboxStats & { connected: boolean; error?: string } {
    return { ...this.outbox.stats(), connected: this.client?.connected ?? false, ...(this.lastError ? { error: this.lastError } : {}) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.sealTimer);
    const client = this.client;
    this.client = undefined;
    if (client?.connected) {
      // Whatever is not acknowledged by then stays in the outbox for the next start.
      const deadline = Date.now() + STOP_GRACE_MS;
      while (this.outbox.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const offline: GatewayStatus = { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'offline', boot: this.boot, since: this.o.clock.now() };
      await withTimeout(client.publishAsync(topics.status(this.o.site, this.o.gateway), JSON.stringify(offline), { qos: 1, retain: true }), STOP_GRACE_MS);
    }
    await client?.endAsync(true);
    this.outbox.close();
  }

  private pump(): void {
    const client = this.client;
    if (!client?.connected || this.stopping) return;
    const { maxInFlight } = this.o.outbox;
    while (this.outbox.stats().inFlight < maxInFlight) {
      const since = this.outbox.openSinceMs;
      if (since !== undefined && this.o.clock.now() - since >= this.o.batch.maxDelayMs) this.seal();
      const m = this.outbox.take();
      if (!m) break;
      this.send(client, m);
    }
    this.updateGauges();
  }

  private send(client: MqttClient, m: OutboxMessage): void {
    const topic = m.kind === 'event' ? topics.events(this.o.site, this.o.gateway) : topics.readings(this.o.site, this.o.gateway);
    const kind = m.kind === 'event' ? 'event' : 'readings';
    client.publish(topic, m.payload, { qos: 1 }, (err) => {
      if (this.stopping && !this.client) {
        // Stopped: the outbox may be closed. Unacknowledged or not, the message is sent again next start.
        if (!err) this.outbox.ack(m);
        return;
      }
      if (err) {
        this.outbox.release(m);
        this.o.metrics.inc('cosafe_edge_publish_failed_total', { kind });
        this.o.logger.warn({ err: err.message, topic }, 'publish failed; the message stays in the outbox');
        return;
      }
      this.outbox.ack(m);
      this.o.metrics.inc('cosafe_edge_published_total', { kind }, m.kind === 'event' ? 1 : m.readings);
      this.pump();
    });
  }

  /** Open readings are sealed into a batch `maxDelayMs` after the first of them arrived. */
  private scheduleSeal(): void {
    if (this.sealTimer || this.stopping) return;
    const since = this.outbox.openSinceMs;
    if (since === undefined) return;
    const wait = Math.max(0, since + this.o.batch.maxDelayMs - this.o.clock.now());
    this.sealTimer = setTimeout(() => {
      this.sealTimer = undefined;
      // While the hub is away there is no hurry: readings wait unsealed until a batch is full.
      if (!this.client?.connected || this.stopping) return;
      this.seal();
      this.pump();
    }, wait);
  }

  private seal(): void {
    try {
      this.outbox.sealOpen(this.o.clock.now());
    } catch (err) {
      // The readings stay open in the outbox; sealing is tried again with the next ones.
      this.lastError = (err as Error).message;
      this.o.logger.error({ code: 'COSAFE_ERR_OUTBOX', err: this.lastError }, 'outbox could not seal a batch');
    }
  }

  private updateGauges(): void {
    const s = this.outbox.stats();
    this.o.metrics.set('cosafe_edge_outbox_readings', {}, s.readings);
    this.o.metrics.set('cosafe_edge_outbox_events', {}, s.events);
  }

  private outboxFailed(err: unknown, count: number, kind: 'readings' | 'event'): void {
    this.lastError = (err as Error).message;
    this.o.metrics.inc('cosafe_edge_outbox_errors_total', { kind }, count);
    this.o.logger.error({ code: 'COSAFE_ERR_OUTBOX', err: this.lastError, kind, count }, 'outbox write failed: these were not accepted');
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
