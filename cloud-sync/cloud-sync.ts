import type { BrokerUrls } from '../core/mqtt-reconnect.js';
import type { Clock } from '../core/clock.js';
import { dataPath, type Config } from '../core/config.js';
import type { Logger, LogLevel } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { ContractConsumer } from './consumer.js';
import { AlarmInbox } from './alarm-inbox.js';
import { PartitionedLanes } from './partitions/partitioned-lanes.js';
import type { CredentialVerifier, LoginGuard } from './http/http-auth.js';
import { registerSiteRoutes } from './http/site-routes.js';
import { startHttpApi, type HttpRoute } from './http-api.js';
import type { ReadingStore } from './reading-store.js';
import { mergeHealth, readingStoreFor } from './reading-stores.js';
import { DispatchSink } from './sinks/dispatch-sink.js';
import { GatewayDirectory } from './sinks/gateway-directory.js';
import { PublicFeedsSink } from './sinks/public-feeds-sink.js';
import type { Sink } from './sinks/sink.js';
import { storeSink } from './sinks/store-sink.js';
import { TimeSeriesSink } from './sinks/time-series-sink.js';
import { startTelemetryLane, type TelemetryLane } from './telemetry/telemetry-lane.js';
import { startTelemetryThread } from './telemetry/telemetry-thread.js';

export interface CloudSyncDeps {
  config: Config;
  brokerUrl: BrokerUrls;
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
  /** Reading back what was stored, and the health of both lanes' stores. */
  readonly store: Pick<ReadingStore, 'latest' | 'history' | 'health'>;
  stop(): Promise<void>;
}

/**
 * Consumes the contract in two lanes (ARCHITECTURE.md) and fans out to the
 * sinks, registered in one list per lane below.
 *
 * - The alarm lane, on the main thread: alarms to the fire departments first
 *   (their lifecycle, journal, escalation, delivery), then events to the store,
 *   gateway status to the directory.
 * - The telemetry lane, in a worker thread of its own by default
 *   (`cloudSync.telemetryWorker`): reading batches to the store.
 *
 * Each lane has its own broker session and its own store buffer, so nothing of
 * the alarm lane waits behind telemetry. Sinks start in list order, before the
 * lane's consumer connects, and stop in reverse, after it has disconnected.
 */
export async function startCloudSync(d: CloudSyncDeps): Promise<CloudSync> {
  const { config, logger, metrics, clock } = d;
  const events = readingStoreFor('alarm', d);
  const dispatch = new DispatchSink({ config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), logger, metrics, clock });
  const gateways = new GatewayDirectory(logger);

  // Residents' alerts and agency summaries: they watch the alarm lifecycle of the dispatch sink.
  const feeds = new PublicFeedsSink({ config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), dispatch, store: events, clock, logger, metrics });

  // The hub's own records for the dashboards (with InfluxDB): alarm lifecycle, public alerts, hub operations.
  const records = new TimeSeriesSink({ config: config.cloudSync.timeSeries, store: events, dispatch, feeds, clock, logger, metrics });

  // The alarm lane's sinks. Order matters: the fire department must not wait for our bookkeeping.
  const alarmSinks: Sink[] = [dispatch, storeSink(events, 'alarm'), feeds, records, gateways];

  const started: Sink[] = [];
  // Alarms ahead of trouble signals and status, however many came first (cloud-sync/alarm-inbox.ts); with partitions, one inbox per partition.
  const inbox = config.cloudSync.partitions ? undefined : new AlarmInbox(dataPath(config, 'alarm-inbox.db'));
  let alarms: ContractConsumer | undefined;
  let partitioned: PartitionedLanes | undefined;
  let telemetry: TelemetryLane | undefined;
  const stopAll = async () => {
    // The partitions first: their leases are given back once their sessions (both lanes) are closed.
    await partitioned?.stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping the partitions'));
    await telemetry?.stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping the telemetry lane'));
    await alarms?.stop();
    inbox?.close();
    for (const sink of started.splice(0).reverse()) await sink.stop().catch((err: Error) => logger.error({ sink: sink.name, err: err.message }, 'error while stopping a sink'));
  };
  try {
    for (const sink of alarmSinks) {
      await sink.start();
      started.push(sink);
    }
    const laneDeps = { config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), logger, metrics, clock };
    if (inbox) {
      alarms = new ContractConsumer({
        brokerUrl: d.brokerUrl,
        ...(d.brokerAuth ? { auth: d.brokerAuth } : {}),
        logger,
        metrics,
        sinks: alarmSinks,
        lanes: ['alarm'],
        onAlarmSubscribed: () => telemetry?.alarmLaneSubscribed(),
        inbox,
        now: () => clock.now(),
      });
      await alarms.start();
    } else {
      const fire = dispatch.fireDispatch();
      partitioned = new PartitionedLanes({ ...laneDeps, sinks: alarmSinks, sites: fire.sites, ...(fire.handover ? { handover: fire.handover } : {}) });
    }
    const p = partitioned;
    const telemetryDeps = { ...laneDeps, ...(p ? { onSessionClosed: () => p.check() } : {}) };
    telemetry = config.cloudSync.telemetryWorker ? await startTelemetryThread({ ...telemetryDeps, logLevel: logger.level as LogLevel }) : await startTelemetryLane(telemetryDeps);
    // The alarm lane may have subscribed before the telemetry lane was there to hear it.
    if (alarms?.alarmLaneReady) telemetry.alarmLaneSubscribed();
    // The leases are claimed only now: a partition taken is consumed in both lanes at once.
    await p?.start(telemetry);
    const a: Pick<ContractConsumer, 'connected'> = alarms ?? { get connected() { return p!.alarmConnected; } };
    const t = telemetry;
    const store: CloudSync['store'] = {
      latest: (filter) => events.latest(filter),
      history: (q) => events.history(q),
      health: () => mergeHealth(t.health().store, events.health()),
    };
    const http = await startHttpApi({
      http: config.http,
      store,
      metrics,
      logger,
      clock,
      access: { verifier: d.verifier, guard: d.loginGuard, sessionsPath: dataPath(config, 'sessions.db') },
      brokerConnected: () => a.connected && t.health().connected,
      brokerLanes: () => ({ alarm: a.connected, telemetry: t.health().connected }),
      gateways: () => gateways.all(),
      pendingDeliveries: () => dispatch.pendingCount(),
      healthExtra: () => ({ ...dispatch.health(), ...feeds.health(), ...(p ? { partitions: p.held() } : {}) }),
      routes: [
        (app) => dispatch.registerRoutes(app),
        (app, h) => feeds.registerRoutes(app, h),
        (app, h) => void registerSiteRoutes(app, { lifecycle: dispatch.fireDispatch().lifecycle, sites: dispatch.fireDispatch().sites, store, gateways: () => gateways.all(), metrics, clock, stillValid: h.stillValid }),
      ],
    });
    return {
      httpUrl: http.url,
      httpRoutes: http.routes,
      store,
      async stop() {
        await http.app.close();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
