import { AlarmHandover } from '../partitions/alarm-handover.js';
import { PartitionOwnership } from '../partitions/partition-ownership.js';
import { cloudSyncInstance } from '../partitions/worker-id.js';
import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { FastifyInstance } from 'fastify';
import type { AlarmEvent, GatewayStatus } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import { dataPath, type Config } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import { openDurableDatabase } from '../../core/sqlite.js';
import { AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import { AlarmStore } from '../alarms/alarm-store.js';
import { TimerScheduler, type Scheduler } from '../alarms/scheduler.js';
import { registerAlarmRoutes } from '../http/alarm-routes.js';
import { SiteRegistry } from '../registry/site-registry.js';
import { SiteStore, siteStorePath } from '../registry/site-store.js';
import { DeliveryLog, type MqttPublish, type PendingDelivery, type WebhookData } from './delivery-log.js';
import { Departments } from './departments.js';
import { DispatchLink } from './dispatch-link.js';
import { MqttDispatcher } from './mqtt-dispatcher.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';

export interface FireDispatchDeps {
  config: Config;
  brokerUrl: BrokerUrls;
  brokerAuth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  scheduler?: Scheduler;
}

export interface FireDispatch {
  readonly lifecycle: AlarmLifecycle;
  readonly sites: SiteRegistry;
  /** With cloudSync.partitions: the alarm state shared in Redis, moved with each partition. */
  readonly handover?: AlarmHandover;
  /** The alarm lane's handler: true once the event is journaled and its deliveries recorded. */
  onEvent(event: AlarmEvent): boolean;
  onStatus(status: GatewayStatus): void;
  registerRoutes(app: FastifyInstance): void;
  pendingCount(): number;
  health(): Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * The fire departments' side of cloud-sync, as one sink: the site registry,
 * the alarm lifecycle with its journal and escalation, delivery over
 * webhooks and MQTT, acknowledgements over MQTT and HTTP.
 */
export async function startFireDispatch(d: FireDispatchDeps): Promise<FireDispatch> {
  const { config, logger, metrics, clock } = d;
  const log = logger.child({ component: 'dispatch' });
  const db = openDurableDatabase(dataPath(config, 'dispatch.db'));
  const deliveryLog = new DeliveryLog(dataPath(config, 'dispatch.db'));
  deliveryLog.attach(db);
  const store = new AlarmStore(db);
  const siteStore = SiteStore.open(siteStorePath(config.dataDir));
  const sites = new SiteRegistry({ store: siteStore, logger: log, metrics });
  sites.refresh();
  const departments = new Departments(config.cloudSync.fireDepartments, config.cloudSync.alarms);
  const scheduler = d.scheduler ?? new TimerScheduler(clock);
  // With partitions, made before the lifecycle starts: at a restart, no timer of a partition held elsewhere is armed.
  const partitions = config.cloudSync.partitions;
  const ownership = partitions ? new PartitionOwnership(partitions.count) : undefined;
  let handover: AlarmHandover | undefined;

  let lifecycle: AlarmLifecycle | undefined;
  const link = new DispatchLink({ brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { auth: d.brokerAuth } : {}), instance: cloudSyncInstance(config), logger: log, onAck: (topic, payload) => {
      const r = lifecycle!.ackFromMqtt(topic, payload);
      // Not an alarm held here: its holder reads the same acknowledgement; kept in Redis in case nobody holds it right now.
      if (handover && !r.ok && (r.reason === 'unknown' || r.reason === 'elsewhere')) handover.stashAck(topic, payload);
    } });
  const webhooks = new WebhookDispatcher({ targets: departments.webhookTargets(), logger: log, metrics, clock, log: deliveryLog, onDelivered: (p, at, n) => lifecycle?.onDelivered(p, at, n) });
  const mqttOut = new MqttDispatcher({
    publish: (topic, payload) => link.publish(topic, payload),
    logger: log,
    metrics,
    log: deliveryLog,
    now: () => clock.now(),
    onDelivered: (p, at) => {
      if (!p.key.startsWith('cmd:')) metrics.inc('cosafe_dispatch_mqtt_published_total', { district: p.message.topic.split('/')[3] ?? '' });
      lifecycle?.onDelivered(p, at);
    },
  });
  lifecycle = new AlarmLifecycle({
    store,
    log: deliveryLog,
    departments,
    config: config.cloudSync.alarms,
    sites: sites.lookup,
    scheduler,
    clock,
    logger: log,
    metrics,
    deliver: (p) => (p.channel === 'webhook' ? webhooks.start(p as PendingDelivery<WebhookData>) : mqttOut.start(p as PendingDelivery<MqttPublish>)),
    othersHaveAlarms: partitions !== undefined,
    ...(ownership ? { holds: (site: string) => ownership.holds(site) } : {}),
  });
  if (partitions && ownership) {
    handover = new AlarmHandover({ redisUrl: partitions.redisUrl, workerId: cloudSyncInstance(config), ownership, lifecycle, store, logger: log.child({ component: 'alarm-state' }), metrics, clock });
    await handover.start();
  }
  if (config.cloudSync.fireDepartments.length === 0) logger.warn('no fire department configured: alarms are journaled but sent to nobody');
  link.start();
  lifecycle.start();
  webhooks.resume();
  mqttOut.resume();
  const l = lifecycle;
  const h = handover;

  return {
    lifecycle: l,
    sites,
    ...(h ? { handover: h } : {}),
    onEvent: (event) => l.onEvent(event),
    onStatus: (status) => {
      if (status.state === 'online') l.checkSite(status.site, status.gateway);
    },
    registerRoutes: (app) => registerAlarmRoutes(app, { lifecycle: l, sites, metrics, logger: log, ...(h ? { handover: h } : {}) }),
    pendingCount: () => webhooks.pendingCount() + mqttOut.pendingCount(),
    health: () => ({ dispatchLink: link.connected, unregisteredSites: l.unregisteredSites(), sitesRegistered: sites.all().length, ...(h ? h.health() : {}) }),
    async stop() {
      await h?.stop();
      l.stop();
      await webhooks.stop();
      mqttOut.stop();
      await link.stop();
      siteStore.close();
      db.close();
    },
  };
}
