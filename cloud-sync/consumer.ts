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

/**
 * Each handler returns true once what it got is durably stored: only then is
 * the message acknowledged to the broker (PUBACK). False means "not stored";
 * the message is offered again until it is.
 */
export interface ConsumerHandlers {
  onBatch(batch: ReadingBatch): boolean;
  onEvent(event: AlarmEvent): boolean;
  onStatus(status: GatewayStatus): void;
}

/** How long to wait before offering a message that could not be stored to the handlers again. */
const STORE_RETRY_MS = 1000;

export interface ConsumerDeps {
  brokerUrl: string;
  /** cloud-sync's login to the hub broker (a service identity). */
  auth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  handlers: ConsumerHandlers;
}

/**
 * Cloud-sync's only input: the contract topics on the broker. Validates every
 * message; a message that breaks the contract is counted and logged, and never
 * stops the ones behind it. Recognises resent batches by gateway, boot and seq.
 *
 * A message is acknowledged only once it is stored: mqtt.js sends the PUBACK
 * when `handleMessage` calls back [MQTT-4.3.2], and that happens after the
 * handlers returned true. Until then the broker keeps the message in
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
    const { logger, metrics } = this.d;
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
      const deliver = () => {
        if (this.stopped) return; // not acknowledged: the broker offers it again to the next run
        if (this.handle(packet.topic, packet.payload as Buffer)) return done();
        // Not stored (the disk failed): hold the line, as the broker holds the message.
        this.retryTimer = setTimeout(deliver, STORE_RETRY_MS);
      };
      deliver();
    };
  }

  /** True when the message is done with: stored, or invalid (counted and skipped). */
  private handle(topic: string, payload: Buffer): boolean {
    const { metrics } = this.d;
    const parsed = parseTopic(topic);
    if (!parsed || parsed.kind === 'deviceUplink') return true;
    if (parsed.kind === 'readings') {
      const r = decodeMessage(ReadingBatch, payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site || r.value.gateway !== parsed.gateway) return this.invalid(topic, 'site/gateway in the message do not match the topic');
      const batch = r.value;
      const key = `${batch.site}/${batch.gateway}`;
      if (this.sequences.has(key, batch.boot, batch.seq)) {
        metrics.inc('cosafe_sync_duplicate_batches_total', { gateway: batch.gateway });
        return true;
      }
      if (!this.d.handlers.onBatch(batch)) return false;
      this.sequences.add(key, batch.boot, batch.seq);
      metrics.inc('cosafe_sync_readings_received_total', {}, batch.readings.length);
      const holes = this.sequences.holes(key);
      metrics.set('cosafe_sync_sequence_holes', { gateway: batch.gateway }, holes);
      return true;
    }
    if (parsed.kind === 'events') {
      const r = decodeMessage(AlarmEvent, payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site) return this.invalid(topic, 'site in the message does not match the topic');
      if (!this.d.handlers.onEvent(r.value)) return false;
      metrics.inc('cosafe_sync_events_received_total', { class: r.value.class });
      return true;
    }
    // An empty retained message clears a status; nothing to do.
    if (payload.length === 0) return true;
    const r = decodeMessage(GatewayStatus, payload);
    if (!r.ok) return this.invalid(topic, r.error);
    this.d.handlers.onStatus(r.value);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.client?.endAsync();
    this.client = undefined;
  }

  private invalid(topic: string, error: string): true {
    this.d.metrics.inc('cosafe_sync_invalid_messages_total');
    this.d.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error }, 'message does not match the contract; skipped');
    return true;
  }
}
