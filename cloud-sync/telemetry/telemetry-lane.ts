import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { Clock } from '../../core/clock.js';
import type { Config } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { Metrics } from '../../core/metrics.js';
import { subscriptions } from '../../broker/contract/index.js';
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
  /** With partitions: a partition's telemetry session closed (the leases check whether it is still ours). */
  onSessionClosed?: () => void;
}

/** With partitions: a partition this worker holds and the registered sites in it. */
export interface PartitionSites {
  partition: number;
  sites: readonly string[];
}

export interface TelemetryLane {
  health(): { store: StoreHealth; connected: boolean };
  /** The alarm lane has subscribed: the telemetry session may let go of the alarm topics. */
  alarmLaneSubscribed(): void;
  /**
   * With partitions: the telemetry sessions to consume (`cosafe-cloud-sync-p<k>`,
   * each subscribed to the readings of its sites). Resolves once the sessions
   * of partitions no longer listed are closed.
   */
  setPartitions(parts: readonly PartitionSites[]): Promise<void>;
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
  const partitioned = new Map<number, ContractConsumer>();
  const stop = async () => {
    await consumer?.stop();
    await Promise.all([...partitioned.values()].map((c) => c.stop()));
    partitioned.clear();
    for (const sink of started.splice(0).reverse()) await sink.stop().catch((err: Error) => d.logger.error({ sink: sink.name, err: err.message }, 'error while stopping a sink'));
  };
  try {
    for (const sink of sinks) {
      await sink.start();
      started.push(sink);
    }
    // With partitions the sessions come and go with the leases (setPartitions); without, one for every site.
    if (!d.config.cloudSync.partitions) {
      consumer = new ContractConsumer({ brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { auth: d.brokerAuth } : {}), logger: d.logger, metrics: d.metrics, sinks, lanes: ['telemetry'], now: () => d.clock.now() });
      await consumer.start();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const c = consumer;
  // One change at a time: two overlapping ones would both start a session for a partition new to both.
  let changing: Promise<void> = Promise.resolve();
  const setPartitions = (parts: readonly PartitionSites[]) => (changing = changing.catch(() => {}).then(() => applyPartitions(parts)));
  const applyPartitions = async (parts: readonly PartitionSites[]) => {
    const wanted = new Map(parts.map((p) => [p.partition, p.sites.map((s) => subscriptions.siteReadings(s))]));
    const gone = [...partitioned].filter(([k]) => !wanted.has(k));
    for (const [k] of gone) partitioned.delete(k);
    await Promise.all(gone.map(([, consumer]) => consumer.stop({ force: true })));
    for (const [k, topics] of wanted) {
      const existing = partitioned.get(k);
      if (existing) {
        existing.setTelemetryTopics(topics);
        continue;
      }
      const consumer = new ContractConsumer({
        brokerUrl: d.brokerUrl,
        ...(d.brokerAuth ? { auth: d.brokerAuth } : {}),
        logger: d.logger.child({ partition: k }),
        metrics: d.metrics,
        sinks,
        lanes: ['telemetry'],
        instance: `p${k}`,
        telemetryTopics: topics,
        ...(d.onSessionClosed ? { onClose: d.onSessionClosed } : {}),
        now: () => d.clock.now(),
      });
      partitioned.set(k, consumer);
      await consumer.start();
    }
  };
  return {
    health: () => ({ store: store.health(), connected: c ? c.connected : [...partitioned.values()].every((p) => p.connected) }),
    alarmLaneSubscribed: () => {
      c?.alarmLaneSubscribed();
      for (const p of partitioned.values()) p.alarmLaneSubscribed();
    },
    setPartitions,
    stop,
  };
}
