import mqtt, { type MqttClient } from 'mqtt';
import {
  AlarmEvent,
  GatewayStatus,
  ReadingBatch,
  decodeMessage,
  parseTopic,
  subscriptions,
} from '../broker/contract/index.js';
import type { Logger } from '../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { SequenceTracker } from './sequence-tracker.js';
import type { Sink } from './sinks/sink.js';

/** How long to wait before offering a message that could not be stored to the sinks again. */
const STORE_RETRY_MS = 1000;

export interface ConsumerDeps {
  brokerUrl: string;
  /** cloud-sync's login to the hub broker (a service identity). */
  auth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  /** Every sink, in the order they get each message. */
  sinks: readonly Sink[];
}

/**
 * Cloud-sync's only input: the contract topics on the broker. Validates every
 * message; a message that breaks the contract is counted and logged, and never
 * stops the ones behind it. Recognises resent batches by gateway, boot and seq.
 * Hands each valid message to every sink with a handler for it.
 *
 * A message is acknowledged only once every sink has taken it: mqtt.js sends
 * the PUBACK when `handleMessage` calls back [MQTT-4.3.2], and that happens
 * after the handlers returned true. Until then the broker keeps the message in
 * cloud-sync's persistent session, and offers it again after a reconnect.
 */
export class ContractConsumer {
  private client: MqttClient | undefined;
  private readonly sequences = new SequenceTracker();
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly d: ConsumerDeps) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async start(): Promise<void> {
    const { logger } = this.d;
    // A persistent session (clean: false) with a fixed id: QoS 1 messages that
    // arrive while cloud-sync reconnects are kept for it by the broker.
    this.client = mqtt.connect(this.d.brokerUrl, {
      ...mqttAuthOptions(this.d.auth),
      clientId: `cosafe-cloud-sync-${process.env.COSAFE_INSTANCE ?? 'main'}`,
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    });
    this.client.on('connect', (connack) => {
      logger.info({ broker: this.d.brokerUrl, sessionPresent: connack.sessionPresent }, 'cloud-sync connected to broker');
      if (!connack.sessionPresent) {
        this.client?.subscribe([subscriptions.allReadings, subscriptions.allEvents, subscriptions.allStatus], { qos: 1 }, (err, granted) => {
          // The broker answers 0x80 for a topic these credentials may not read [MQTT-3.9.3].
          const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
          if (err || refused.length) logger.error({ err: err?.message, refused }, 'cloud-sync could not subscribe (are cloudSync.credentials those of a service?)');
        });
      }
    });
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'cloudSync.credentials');
      if (hint) logger.error({ err: err.message, hint }, 'the hub refused cloud-sync');
      else logger.warn({ err: err.message }, 'cloud-sync broker connection error');
    });
    this.client.handleMessage = (packet, done) => {
      // The sinks that have not taken this message yet: a retry goes to them only.
      let waiting: Set<Sink> | undefined;
      const deliver = () => {
        if (this.stopped) return; // not acknowledged: the broker offers it again to the next run
        waiting = this.handle(packet.topic, packet.payload as Buffer, waiting);
        if (waiting.size === 0) return done();
        // Not stored (a disk failed): hold the line, as the broker holds the message.
        this.retryTimer = setTimeout(deliver, STORE_RETRY_MS);
      };
      deliver();
    };
  }

  /** The sinks still waiting for this message: empty when it is done with (taken by all, or invalid and skipped). */
  private handle(topic: string, payload: Buffer, waiting: Set<Sink> | undefined): Set<Sink> {
    const { metrics } = this.d;
    const done = new Set<Sink>();
    const parsed = parseTopic(topic);
    if (!parsed || parsed.kind === 'deviceUplink') return done;
    if (parsed.kind === 'readings') {
      const r = decodeMessage(ReadingBatch, payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site || r.value.gateway !== parsed.gateway) return this.invalid(topic, 'site/gateway in the message do not match the topic');
      const batch = r.value;
      const key = `${batch.site}/${batch.gateway}`;
      if (this.sequences.has(key, batch.boot, batch.seq)) {
        metrics.inc('cosafe_sync_duplicate_batches_total', { gateway: batch.gateway });
        return done;
      }
      const left = this.offer(waiting, (s) => s.onBatch?.(batch));
      if (left.size) return left;
      this.sequences.add(key, batch.boot, batch.seq);
      metrics.inc('cosafe_sync_readings_received_total', {}, batch.readings.length);
      metrics.set('cosafe_sync_sequence_holes', { gateway: batch.gateway }, this.sequences.holes(key));
      return left;
    }
    if (parsed.kind === 'events') {
      const r = decodeMessage(AlarmEvent, payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site) return this.invalid(topic, 'site in the message does not match the topic');
      const event = r.value;
      const left = this.offer(waiting, (s) => s.onEvent?.(event));
      if (left.size === 0) metrics.inc('cosafe_sync_events_received_total', { class: event.class });
      return left;
    }
    // An empty retained message clears a status; nothing to do.
    if (payload.length === 0) return done;
    const r = decodeMessage(GatewayStatus, payload);
    if (!r.ok) return this.invalid(topic, r.error);
    for (const sink of this.d.sinks) sink.onStatus?.(r.value);
    return done;
  }

  /** Offers a message to each sink that still waits for it (all, the first time); returns those that did not take it. */
  private offer(waiting: Set<Sink> | undefined, take: (sink: Sink) => boolean | undefined): Set<Sink> {
    const left = new Set<Sink>();
    for (const sink of waiting ?? this.d.sinks) if (take(sink) === false) left.add(sink);
    return left;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.client?.endAsync();
    this.client = undefined;
  }

  private invalid(topic: string, error: string): Set<Sink> {
    this.d.metrics.inc('cosafe_sync_invalid_messages_total');
    this.d.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error }, 'message does not match the contract; skipped');
    return new Set();
  }
}
