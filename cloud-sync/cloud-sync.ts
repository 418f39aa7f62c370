import type { GatewayStatus } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import { dataPath, type Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { ContractConsumer } from './consumer.js';
import { startFireDispatch } from './dispatch/fire-dispatch.js';
import type { CredentialVerifier, LoginGuard } from './http/http-auth.js';
import { registerSiteRoutes } from './http/site-routes.js';
import { startHttpApi, type HttpRoute } from './http-api.js';
import { startPublicFeeds } from './public-feeds.js';
import { InfluxStore } from './influx/influx-store.js';
import type { ReadingStore } from './reading-store.js';
import { SqliteStore } from './sqlite-store.js';

export interface CloudSyncDeps {
  config: Config;
  brokerUrl: string;
  /** cloud-sync's login to the hub broker (resolved by the composition root). */
  brokerAuth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** The credential store, for the HTTP API's private endpoints (injected by the composition root). */
  verifier: CredentialVerifier;
  /** Failed logins per address and identity (the broker's guard, injected by the composition root). */
  loginGuard: LoginGuard;
}

export interface CloudSync {
  readonly httpUrl: string;
  /** The HTTP API's routes and who may call each. */
  readonly httpRoutes: readonly HttpRoute[];
  readonly store: ReadingStore;
  stop(): Promise<void>;
}

/** Consumes the contract and fans out: readings to the store, alarms to fire departments. */
export async function startCloudSync(d: CloudSyncDeps): Promise<CloudSync> {
  const { config, logger, metrics, clock } = d;
  const store: ReadingStore = config.cloudSync.influx
    ? new InfluxStore({ config: config.cloudSync.influx, bufferPath: dataPath(config, 'influx-buffer.db'), logger: logger.child({ component: 'influx' }), metrics })
    : new SqliteStore({ path: dataPath(config, 'readings.db'), retentionHours: config.cloudSync.store.retentionHours, logger, metrics, clock });
  await store.start();

  const dispatch = await startFireDispatch({ config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), logger, metrics, clock });

  // Residents' alerts and agency summaries: sinks that watch the alarm lifecycle.
  const feeds = await startPublicFeeds({ config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), dispatch, store, clock, logger, metrics });

  const gateways = new Map<string, GatewayStatus>();
  const consumer = new ContractConsumer({
    brokerUrl: d.brokerUrl,
    ...(d.brokerAuth ? { auth: d.brokerAuth } : {}),
    logger,
    metrics,
    handlers: {
      onBatch: (batch) => store.writeBatch(batch),
      onEvent: (event) => {
        // The alarm lifecycle first: the fire department must not wait for our bookkeeping.
        if (!dispatch.onEvent(event)) return false;
        return store.writeEvent(event);
      },
      onStatus: (status) => {
        const key = `${status.site}/${status.gateway}`;
        const before = gateways.get(key);
        gateways.set(key, status);
        dispatch.onStatus(status);
        feeds.onStatus(status);
        if (before?.state !== status.state) {
          const log = status.state === 'online' ? logger.info.bind(logger) : logger.warn.bind(logger);
          log({ gateway: status.gateway, site: status.site }, `gateway ${status.state}`);
        }
      },
    },
  });
  await consumer.start();

  const http = await startHttpApi({
    http: config.http,
    store,
    metrics,
    logger,
    clock,
    access: { verifier: d.verifier, guard: d.loginGuard, sessionsPath: dataPath(config, 'sessions.db') },
    brokerConnected: () => consumer.connected,
    gateways: () => [...gateways.values()],
    pendingDeliveries: () => dispatch.pendingCount(),
    healthExtra: () => ({ ...dispatch.health(), ...feeds.health() }),
    routes: [
      (app) => dispatch.registerRoutes(app),
      (app, h) => feeds.registerRoutes(app, h),
      (app, h) => void registerSiteRoutes(app, { lifecycle: dispatch.lifecycle, sites: dispatch.sites, store, gateways: () => [...gateways.values()], metrics, clock, stillValid: h.stillValid }),
    ],
  });

  return {
    httpUrl: http.url,
    httpRoutes: http.routes,
    store,
    async stop() {
      await http.app.close();
      await consumer.stop();
      await feeds.stop();
      await dispatch.stop();
      await store.stop();
    },
  };
}
