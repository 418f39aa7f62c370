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

export interface ConsumerHandlers {
  onBatch(batch: ReadingBatch): void;
  onEvent(event: AlarmEvent): void;
  onStatus(status: GatewayStatus): void;
}

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
 * stops the ones behind it. Watches each gateway's sequence for gaps and resends.
 */
export class ContractConsumer {
  private client: MqttClient | undefined;
  private readonly sequences = new Map<string, { boot: string; seq: number }>();

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
    this.client.on('message', (topic, payload) => {
      const parsed = parseTopic(topic);
      if (!parsed || parsed.kind === 'deviceUplink') return;
      if (parsed.kind === 'readings') {
        const r = decodeMessage(ReadingBatch, payload);
        if (!r.ok) return this.invalid(topic, r.error);
        if (r.value.site !== parsed.site || r.value.gateway !== parsed.gateway) return this.invalid(topic, 'site/gateway in the message do not match the topic');
        if (!this.checkSequence(r.value)) return;
        metrics.inc('cosafe_sync_readings_received_total', 'Readings received from gateways', {}, r.value.readings.length);
        this.d.handlers.onBatch(r.value);
      } else if (parsed.kind === 'events') {
        const r = decodeMessage(AlarmEvent, payload);
        if (!r.ok) return this.invalid(topic, r.error);
        if (r.value.site !== parsed.site) return this.invalid(topic, 'site in the message does not match the topic');
        metrics.inc('cosafe_sync_events_received_total', 'Alarm events received from gateways', { class: r.value.class });
        this.d.handlers.onEvent(r.value);
      } else {
        // An empty retained message clears a status; nothing to do.
        if (payload.length === 0) return;
        const r = decodeMessage(GatewayStatus, payload);
        if (!r.ok) return this.invalid(topic, r.error);
        this.d.handlers.onStatus(r.value);
      }
    });
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
    this.client = undefined;
  }

  private invalid(topic: string, error: string): void {
    this.d.metrics.inc('cosafe_sync_invalid_messages_total', 'Messages on contract topics that broke the contract');
    this.d.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error }, 'message does not match the contract; skipped');
  }

  /** False for a batch already seen (a QoS 1 resend). */
  private checkSequence(batch: ReadingBatch): boolean {
    const key = `${batch.site}/${batch.gateway}`;
    const last = this.sequences.get(key);
    if (last && last.boot === batch.boot) {
      if (batch.seq <= last.seq) {
        this.d.metrics.inc('cosafe_sync_duplicate_batches_total', 'Reading batches received twice (not stored twice)', { gateway: batch.gateway });
        return false;
      }
      if (batch.seq > last.seq + 1) {
        const missing = batch.seq - last.seq - 1;
        this.d.metrics.inc('cosafe_sync_sequence_gaps_total', 'Reading batches missing in a gateway sequence', { gateway: batch.gateway }, missing);
        this.d.logger.warn({ gateway: batch.gateway, site: batch.site, after: last.seq, got: batch.seq, missing }, 'gap in gateway sequence');
      }
    }
    this.sequences.set(key, { boot: batch.boot, seq: batch.seq });
    return true;
  }
}
