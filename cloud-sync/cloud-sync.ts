import type { Clock } from '../core/clock.js';
import { dataPath, type Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { ContractConsumer } from './consumer.js';
import { startHttpApi } from './http-api.js';
import { InfluxStore } from './influx/influx-store.js';
import type { ReadingStore } from './reading-store.js';
import { DispatchSink } from './sinks/dispatch-sink.js';
import { GatewayDirectory } from './sinks/gateway-directory.js';
import type { Sink } from './sinks/sink.js';
import { storeSink } from './sinks/store-sink.js';
import { SqliteStore } from './sqlite-store.js';

export interface CloudSyncDeps {
  config: Config;
  brokerUrl: string;
  /** cloud-sync's login to the hub broker (resolved by the composition root). */
  brokerAuth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

export interface CloudSync {
  readonly httpUrl: string;
  readonly store: ReadingStore;
  stop(): Promise<void>;
}

/**
 * Consumes the contract and fans out to the sinks, registered in one list
 * below: alarms to fire departments first, then readings and events to the
 * store, gateway status to the directory. Sinks start in list order, before the
 * consumer connects, and stop in reverse, after it has disconnected.
 */
export async function startCloudSync(d: CloudSyncDeps): Promise<CloudSync> {
  const { config, logger, metrics, clock } = d;
  const store: ReadingStore = config.cloudSync.influx
    ? new InfluxStore({ config: config.cloudSync.influx, bufferPath: dataPath(config, 'influx-buffer.db'), logger: logger.child({ component: 'influx' }), metrics })
    : new SqliteStore({ path: dataPath(config, 'readings.db'), retentionHours: config.cloudSync.store.retentionHours, logger, metrics, clock });
  const dispatch = new DispatchSink({ departments: config.cloudSync.fireDepartments, logPath: dataPath(config, 'dispatch.db'), logger: logger.child({ component: 'dispatch' }), metrics, clock });
  const gateways = new GatewayDirectory(logger);

  // The one list of sinks. Order matters on the alarm lane: the fire department must not wait for our bookkeeping.
  const sinks: Sink[] = [dispatch, storeSink(store), gateways];

  const started: Sink[] = [];
  const stopSinks = async () => {
    for (const sink of started.splice(0).reverse()) await sink.stop().catch((err: Error) => logger.error({ sink: sink.name, err: err.message }, 'error while stopping a sink'));
  };
  let consumer: ContractConsumer | undefined;
  try {
    for (const sink of sinks) {
      await sink.start();
      started.push(sink);
    }
    consumer = new ContractConsumer({ brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { auth: d.brokerAuth } : {}), logger, metrics, sinks });
    await consumer.start();
    const c = consumer;
    const http = await startHttpApi({
      host: config.http.host,
      port: config.http.port,
      store,
      metrics,
      logger,
      brokerConnected: () => c.connected,
      gateways: () => gateways.all(),
      pendingDeliveries: () => dispatch.pendingCount(),
    });
    return {
      httpUrl: http.url,
      store,
      async stop() {
        await http.app.close();
        await c.stop();
        await stopSinks();
      },
    };
  } catch (err) {
    await consumer?.stop();
    await stopSinks();
    throw err;
  }
}
