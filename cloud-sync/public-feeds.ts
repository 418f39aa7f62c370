import { cloudSyncInstance } from './partitions/worker-id.js';
import type { BrokerUrls } from '../core/mqtt-reconnect.js';
import type { FastifyInstance } from 'fastify';
import type { GatewayStatus } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import { dataPath, type Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import { AgencySink } from './agency/agency-sink.js';
import type { FireDispatch } from './dispatch/fire-dispatch.js';
import { registerAgencyRoutes } from './http/agency-routes.js';
import { registerPublicApi } from './http/public-api.js';
import { PublicAlerts } from './public/public-alerts.js';
import type { ReadingStore } from './reading-store.js';
import { RetainedPublisher } from './retained-publisher.js';
import type { HttpContext } from './http-api.js';

export interface PublicFeedsDeps {
  config: Config;
  brokerUrl: BrokerUrls;
  brokerAuth?: MqttClientAuth;
  /** The alarm lifecycle and the registry they watch. */
  dispatch: FireDispatch;
  store: ReadingStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export interface PublicFeeds {
  readonly alerts: PublicAlerts;
  readonly agency: AgencySink;
  onStatus(status: GatewayStatus): void;
  registerRoutes(app: FastifyInstance, http: Pick<HttpContext, 'secure'>): void;
  health(): Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * The sinks that face outside the emergency services: public alerts for
 * residents and aggregators, summaries for agencies. Both watch the alarm
 * lifecycle (its observer) rather than the raw events, so that what they say
 * follows the lifecycle's decisions (acknowledged, warn the public, ended);
 * both publish retained messages through one MQTT client of their own.
 */
export async function startPublicFeeds(d: PublicFeedsDeps): Promise<PublicFeeds> {
  const { config, dispatch, clock, metrics } = d;
  const retained = new RetainedPublisher({ brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { auth: d.brokerAuth } : {}), name: 'feeds', instance: cloudSyncInstance(config), logger: d.logger, metrics });
  retained.start();
  const alerts = new PublicAlerts({
    config: config.cloudSync.public,
    cap: config.cloudSync.alarms.cap,
    dbPath: dataPath(config, 'public-alerts.db'),
    sites: dispatch.sites,
    alarms: () => dispatch.lifecycle.list({ includeNormal: true }),
    retained,
    clock,
    logger: d.logger.child({ component: 'public' }),
    metrics,
  });
  const agency = new AgencySink({
    config: config.cloudSync.agency,
    sites: dispatch.sites,
    alarms: dispatch.lifecycle,
    configuredDistricts: [...new Set([...Object.keys(config.cloudSync.alarms.districts), ...Object.keys(config.cloudSync.public.policy.districts)])],
    retained,
    ...(d.store.writeRecords ? { writeRecords: (lines: readonly string[]) => d.store.writeRecords!(lines) } : {}),
    clock,
    logger: d.logger.child({ component: 'agency' }),
    metrics,
  });
  await alerts.start();
  await agency.start();
  const unobserve = dispatch.lifecycle.observe((a) => {
    alerts.onAlarm(a);
    agency.onAlarm();
  });
  let streams: { count: number } | undefined;
  return {
    alerts,
    agency,
    onStatus: (status) => agency.onStatus(status),
    registerRoutes(app, http) {
      streams = registerPublicApi(app, {
        tls: http.secure,
        alerts,
        config: config.cloudSync.public,
        capStatus: config.cloudSync.alarms.cap.status,
        districts: () => agency.districts(),
        metrics,
        logger: d.logger,
      }).streams;
      registerAgencyRoutes(app, { agency, metrics });
    },
    health: () => ({ feedsLink: retained.connected, publicStreams: streams?.count ?? 0, publicAlertsActive: alerts.current().filter((a) => a.state === 'active').length }),
    async stop() {
      unobserve();
      await agency.stop();
      await alerts.stop();
      await retained.stop();
    },
  };
}
