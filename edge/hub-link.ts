import { type IClientOptions, type MqttClient } from 'mqtt';
import { ALARM_RECONNECT_CAP_MS, RECONNECT_BACKOFF } from '../core/backoff.js';
import { connectMqtt, hurryReconnect, withoutNagle, type BrokerUrls } from '../core/mqtt-reconnect.js';
import type { Logger } from '../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';

/** A durable queue a link sends from: what `take` hands out stays until `ack`, or goes back with `release`. */
export interface LinkQueue<M extends { id: number; payload: string }> {
  take(): M | undefined;
  ack(m: M): void;
  release(m: M): void;
  stats(): { inFlight: number };
}

export interface HubLinkOptions<M extends { id: number; payload: string }> {
  /** Which lane, for logs and metrics: `events` (alarm lane) or `readings` (telemetry). */
  lane: 'event' | 'readings';
  brokerUrl: BrokerUrls;
  auth?: MqttClientAuth;
  clientId: string;
  will?: IClientOptions['will'];
  topic: string;
  queue: LinkQueue<M>;
  maxInFlight: number;
  /** How many readings a message carries (for the published counter). */
  weight: (m: M) => number;
  logger: Logger;
  metrics: Metrics;
  /** On every (re)connect, before the queue is pumped. */
  onConnect?: () => void;
  /** Before each take (the telemetry lane seals a batch whose delay has passed). */
  beforeTake?: () => void;
  /** After a message was acknowledged. */
  onAck?: (m: M) => void;
  /** Filters this link reads (QoS 1), subscribed on every connect, and what to do with their messages. */
  subscribe?: string[];
  onMessage?: (topic: string, payload: Buffer) => void;
  /**
   * A fire alarm waits in this lane's queue: while it does, the link retries
   * the hub within ALARM_RECONNECT_CAP_MS instead of the fleet's 30 s backoff.
   */
  urgent?: () => boolean;
}

/**
 * One MQTT connection from the gateway to the hub, sending one lane's queue
 * with QoS 1, at most `maxInFlight` messages unacknowledged. A message leaves
 * the queue on the hub's PUBACK (mqtt.js calls the publish callback on PUBACK
 * [MQTT-4.3.2]). While the hub is unreachable nothing is published; messages in
 * flight when the connection drops are sent again by mqtt.js after the
 * reconnect, everything else from the queue.
 *
 * The gateway has two, so an alarm never waits behind telemetry: not in a
 * shared in-flight window, not behind batches in the same TCP stream, not
 * behind the broker holding back this gateway's telemetry (backpressure).
 */
export class HubLink<M extends { id: number; payload: string }> {
  private client: MqttClient | undefined;
  private stopping = false;

  constructor(private readonly o: HubLinkOptions<M>) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(): void {
    const { o } = this;
    this.client = connectMqtt(
      o.brokerUrl,
      {
        ...mqttAuthOptions(o.auth),
        clientId: o.clientId,
        connectTimeout: 5000,
        ...(o.will ? { will: o.will } : {}),
      },
      o.urgent ? { ...RECONNECT_BACKOFF, urgent: o.urgent, urgentCapMs: ALARM_RECONNECT_CAP_MS } : RECONNECT_BACKOFF,
    );
    // An event must not wait for the acknowledgement of the status written before it (Nagle's algorithm).
    if (o.lane === 'event') withoutNagle(this.client);
    this.client.on('connect', () => {
      o.logger.info({ broker: o.brokerUrl, lane: o.lane }, 'gateway connected to hub');
      o.onConnect?.();
      this.pump();
      if (o.subscribe?.length) this.client?.subscribe(o.subscribe, { qos: 1 });
    });
    this.client.on('message', (topic, payload) => o.onMessage?.(topic, payload));
    this.client.on('offline', () => o.logger.warn({ broker: o.brokerUrl, lane: o.lane }, 'gateway lost the hub; this lane waits in the outbox until it is back'));
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'gateway.credentials');
      if (hint) o.logger.error({ err: err.message, hint, lane: o.lane }, 'the hub refused the gateway');
      else o.logger.warn({ err: err.message, lane: o.lane }, 'gateway connection error');
    });
  }

  /** Sends from the queue while the window has room; away from the hub, an urgent queue cuts the wait to reconnect. */
  pump(): void {
    const client = this.client;
    if (this.stopping || !client) return;
    if (!client.connected) {
      if (this.o.urgent?.()) hurryReconnect(client);
      return;
    }
    while (this.o.queue.stats().inFlight < this.o.maxInFlight) {
      this.o.beforeTake?.();
      const m = this.o.queue.take();
      if (!m) break;
      this.send(client, m);
    }
  }

  /** A message outside the queue (the retained status), QoS 1, fire and forget: it is sent again when it changes. */
  publishAside(topic: string, payload: string, retain: boolean): void {
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 1, retain });
  }

  /** Waits up to `graceMs` for what is in flight, publishes `last` if given, then ends the connection. */
  async stop(graceMs: number, last?: { topic: string; payload: string; retain: boolean }): Promise<void> {
    this.stopping = true;
    const client = this.client;
    this.client = undefined;
    if (client?.connected) {
      // Whatever is not acknowledged by then stays in the outbox for the next start.
      const deadline = Date.now() + graceMs;
      while (this.o.queue.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (last) await withTimeout(client.publishAsync(last.topic, last.payload, { qos: 1, retain: last.retain }), graceMs);
    }
    await client?.endAsync(true);
  }

  private send(client: MqttClient, m: M): void {
    const { o } = this;
    client.publish(o.topic, m.payload, { qos: 1 }, (err) => {
      if (this.stopping && !this.client) {
        // Stopped: the outbox may be closed. Unacknowledged or not, the message is sent again next start.
        if (!err) o.queue.ack(m);
        return;
      }
      if (err) {
        o.queue.release(m);
        o.metrics.inc('cosafe_edge_publish_failed_total', { kind: o.lane });
        o.logger.warn({ err: err.message, topic: o.topic }, 'publish failed; the message stays in the outbox');
        return;
      }
      o.queue.ack(m);
      o.metrics.inc('cosafe_edge_published_total', { kind: o.lane }, o.weight(m));
      o.onAck?.(m);
      this.pump();
    });
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
