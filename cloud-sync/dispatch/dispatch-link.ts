import { type MqttClient } from 'mqtt';
import { ALARM_LANE_BACKOFF } from '../../core/backoff.js';
import { connectMqtt, withoutNagle, type BrokerUrls } from '../../core/mqtt-reconnect.js';
import { subscriptions } from '../../broker/contract/index.js';
import type { Logger } from '../../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../../core/mqtt-client-auth.js';

/** Longest a publish waits for its PUBACK before it counts as failed (and is retried). */
const PUBLISH_TIMEOUT_MS = 10_000;

export interface DispatchLinkDeps {
  brokerUrl: BrokerUrls;
  auth?: MqttClientAuth;
  /** Names its persistent session (cloud-sync/partitions/worker-id.ts): each worker has its own. */
  instance?: string;
  logger: Logger;
  /**
   * An acknowledgement arrived on `dispatch/<district>/acks/<eventId>`. Returns
   * once it is journaled (or refused): only then is it acknowledged to the broker.
   */
  onAck(topic: string, payload: Buffer): void;
}

/**
 * Cloud-sync's link to the fire departments over MQTT: it publishes dispatch
 * messages and gateway commands, and reads acknowledgements, on a persistent
 * session of its own (clean: false), so an acknowledgement sent while
 * cloud-sync restarts waits for it at the broker, and dispatch never queues
 * behind the telemetry of the contract consumer.
 */
export class DispatchLink {
  private client: MqttClient | undefined;

  constructor(private readonly d: DispatchLinkDeps) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(): void {
    const { logger } = this.d;
    this.client = connectMqtt(this.d.brokerUrl, {
      ...mqttAuthOptions(this.d.auth),
      clientId: `cosafe-cloud-sync-dispatch-${this.d.instance ?? process.env.COSAFE_INSTANCE ?? 'main'}`,
      clean: false,
      connectTimeout: 5000,
    }, ALARM_LANE_BACKOFF);
    // A fire department's alarm must not wait for the acknowledgement of a message written before it.
    withoutNagle(this.client);
    this.client.on('connect', () => {
      // On every connect, not only for a new session: a grant added later is then taken up too.
      this.client?.subscribe(subscriptions.allAcks, { qos: 1 }, (err, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (err || refused.length) logger.error({ err: err?.message, refused }, 'cloud-sync cannot read acknowledgements (are cloudSync.credentials those of a service?)');
      });
    });
    this.client.on('error', (err) => {
      const hint = refusalHint(err, 'cloudSync.credentials');
      logger.warn({ err: err.message, ...(hint ? { hint } : {}) }, 'dispatch link broker connection error');
    });
    this.client.handleMessage = (packet, done) => {
      try {
        this.d.onAck(packet.topic, packet.payload as Buffer);
      } catch (err) {
        // Not journaled (the disk failed): not acknowledged either, so the broker offers it again.
        logger.error({ code: 'COSAFE_ERR_ALARM_STORE', err: (err as Error).message }, 'could not record an acknowledgement; the broker will offer it again');
        return;
      }
      done();
    };
  }

  async publish(topic: string, payload: string): Promise<void> {
    const client = this.client;
    if (!client?.connected) throw new Error('not connected to the broker');
    await Promise.race([
      client.publishAsync(topic, payload, { qos: 1 }),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no PUBACK within 10 s')), PUBLISH_TIMEOUT_MS).unref()),
    ]);
  }

  async stop(): Promise<void> {
    // Forced: a publish still waiting for its PUBACK is in the delivery log and goes again at the next start.
    await this.client?.endAsync(true);
    this.client = undefined;
  }
}
