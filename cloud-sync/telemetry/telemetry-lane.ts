import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { Clock } from '../../core/clock.js';
import type { Config } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { Metrics } from '../../core/metrics.js';
import { ContractConsumer } from '../consumer.js';
import type { StoreHealth } from '../reading-store.js';
import { readingStoreFor } from '../reading-stores.js';
import type { Sink } from '../sinks/sink.js';
import { storeSink } from '../sinks/store-sink.js';

export interface TelemetryLaneDeps {
  config: Config;
  brokerUrl: BrokerUrls;
  brokerAuth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

export interface TelemetryLane {
  health(): { store: StoreHealth; connected: boolean };
  /** The alarm lane has subscribed: the telemetry session may let go of the alarm topics. */
  alarmLaneSubscribed(): void;
  stop(): Promise<void>;
}

/**
 * Cloud-sync's telemetry lane: reading batches from its own broker session into
 * the reading store (InfluxDB through its on-disk buffer, or the local store).
 * It runs in a worker thread of its own by default (telemetry-thread.ts), so
 * decoding, validating and encoding batches never holds up the alarm lane and
 * the broker on the main thread; here is what runs there, or in the main
 * thread when the worker is turned off.
 */
export async function startTelemetryLane(d: TelemetryLaneDeps): Promise<TelemetryLane> {
  const store = readingStoreFor('telemetry', d);
  // The telemetry lane's sinks: today the store; a sink that needs readings (an agency feed) joins here.
  const sinks: Sink[] = [storeSink(store, 'telemetry')];
  const started: Sink[] = [];
  let consumer: ContractConsumer | undefined;
  const stop = async () => {
    await consumer?.stop();
    for (const sink of started.splice(0).reverse()) await sink.stop().catch((err: Error) => d.logger.error({ sink: sink.name, err: err.message }, 'error while stopping a sink'));
  };
  try {
    for (const sink of sinks) {
      await sink.start();
      started.push(sink);
    }
    consumer = new ContractConsumer({ brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { auth: d.brokerAuth } : {}), logger: d.logger, metrics: d.metrics, sinks, lanes: ['telemetry'], now: () => d.clock.now() });
    await consumer.start();
  } catch (err) {
    await stop();
    throw err;
  }
  const c = consumer;
  return {
    health: () => ({ store: store.health(), connected: c.connected }),
    alarmLaneSubscribed: () => c.alarmLaneSubscribed(),
    stop,
  };
}
