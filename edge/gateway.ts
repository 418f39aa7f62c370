import type { BrokerUrls } from '../core/mqtt-reconnect.js';
import { join } from 'node:path';
import type { AlarmEvent, GatewayHealth } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { ThrottledLog } from '../core/throttled-log.js';
import type { Profile } from '../device-profiles/schema.js';
import { REFUSED, type Adapter, type HeardDevice } from './adapters/adapter.js';
import { adapterFor } from './adapters/registry.js';
import { ConditionState } from './condition-state.js';
import { bindDevices, type DeviceBinding } from './device-binding.js';
import { DeviceTimeCheck } from './device-time.js';
import { HealthReport } from './health-report.js';
import { Pipeline } from './pipeline.js';
import { Publisher } from './publisher.js';
import { Supervision } from './supervision.js';
import { TELEMETRY_DROPPED, TelemetryDrops } from './telemetry-drops.js';
import { UnknownDevices } from './unknown-devices.js';

export { bindDevices, TELEMETRY_DROPPED };

export interface GatewayDeps {
  config: Config['gateway'];
  /** The hub broker (resolved by the composition root). */
  brokerUrl: BrokerUrls;
  /** The gateway's login to the hub broker (resolved by the composition root). */
  brokerAuth?: MqttClientAuth;
  profiles: ReadonlyMap<string, Profile>;
  /** Where the gateway keeps state that must survive a restart. */
  stateDir: string;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
}

const SUPERVISION_TICK_MS = 1000;

/**
 * The edge gateway, put together from its parts: adapters read devices
 * (edge/adapters), the pipeline decodes and evaluates (pipeline.ts), the
 * conditions and their durable state (condition-state.ts), supervision of
 * silent devices (supervision.ts), dropped telemetry as trouble
 * (telemetry-drops.ts), the health report (health-report.ts), devices heard but
 * not configured (unknown-devices.ts), and the publisher with its two lanes to
 * the hub (publisher.ts). Devices and profiles can be replaced while it runs
 * (`reload`).
 */
export class Gateway {
  private adapters: Adapter[] = [];
  private bindings: DeviceBinding[] = [];
  /** The bridges of the config in force (a reload may change them). */
  private bridges: Config['gateway']['bridges'];
  private readonly publisher: Publisher;
  private readonly conditions: ConditionState;
  private readonly supervision: Supervision;
  private readonly drops: TelemetryDrops;
  private readonly pipeline: Pipeline;
  private readonly report: HealthReport;
  /** Devices heard on the broker that are not configured, for the health report (bounded). */
  private readonly unknown = new UnknownDevices();
  private readonly unknownLog: ThrottledLog;
  private abort = new AbortController();
  private supervisionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: GatewayDeps) {
    const { config, logger, metrics, clock } = deps;
    this.publisher = new Publisher({
      brokerUrl: deps.brokerUrl,
      ...(deps.brokerAuth ? { auth: deps.brokerAuth } : {}),
      site: config.site,
      gateway: config.id,
      batch: config.batch,
      outbox: { path: join(deps.stateDir, `outbox-${config.id}.db`), eventsPath: join(deps.stateDir, `outbox-${config.id}-alarms.db`), ...config.outbox },
      logger,
      clock,
      metrics,
      onTelemetryDropped: (dropped) => void this.raise(this.drops.dropped(dropped, clock.now())),
    });
    this.publisher.open();
    // Condition state survives a restart: an alarm active before it is not raised
    // again as new, and its clear is still reported when it comes.
    this.conditions = new ConditionState({
      site: config.site,
      gateway: config.id,
      outbox: this.publisher.conditions,
      record: (events, changes) => this.publisher.recordEvents(events, changes),
      legacyStateFile: join(deps.stateDir, `gateway-${config.id}-conditions.json`),
      logger,
      metrics,
    });
    const engine = this.conditions.engine;
    // The gateway's own trouble (dropped telemetry, devices it cannot hear) names the gateway as its source.
    const self = { device: { id: config.id, location: `gateway ${config.id}` }, profile: { id: 'cosafe-gateway' } };
    this.supervision = new Supervision(engine, self);
    this.drops = new TelemetryDrops({
      engine,
      self,
      maxTelemetryReadings: config.outbox.maxTelemetryReadings,
      logger,
    });
    const deviceTime = new DeviceTimeCheck({ bounds: config.deviceTime, logger, metrics });
    this.pipeline = new Pipeline({ engine, supervision: this.supervision, deviceTime, raise: (events) => this.raise(events), addReadings: (r) => this.publisher.addReadings(r), clock, metrics, logger });
    this.report = new HealthReport({
      clock,
      adapters: () => this.adapters,
      bindings: () => this.bindings,
      engine,
      supervision: this.supervision,
      publisher: this.publisher,
      unknownDevices: () => this.unknown.list(),
    });
    this.bindings = bindDevices(config, deps.profiles);
    this.bridges = config.bridges;
    // One line per unknown topic a minute: what to add, not a flood.
    this.unknownLog = new ThrottledLog(logger, clock, 60_000);
  }

  async start(): Promise<void> {
    await this.publisher.start();
    await this.startAdapters();
    this.supervisionTimer = setInterval(() => this.supervise(), SUPERVISION_TICK_MS);
    this.report.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.supervisionTimer);
    this.report.stop();
    await this.stopAdapters();
    await this.publisher.stop();
  }

  /**
   * Replaces devices and profiles without a restart. Validation happens before
   * anything stops: an invalid change throws with all its errors and the running
   * set stays in force.
   */
  async reload(config: Config['gateway'], profiles: ReadonlyMap<string, Profile>): Promise<void> {
    const bindings = bindDevices(config, profiles);
    for (const b of bindings) adapterFor(b.profile.transport);
    await this.stopAdapters();
    this.bindings = bindings;
    this.bridges = config.bridges;
    await this.startAdapters();
    this.deps.logger.info({ devices: bindings.length }, 'gateway reloaded devices and profiles');
  }

  health(): GatewayHealth {
    return this.report.health();
  }

  private async startAdapters(): Promise<void> {
    const { deps } = this;
    const byTransport = new Map<string, DeviceBinding[]>();
    for (const b of this.bindings) byTransport.set(b.profile.transport, [...(byTransport.get(b.profile.transport) ?? []), b]);
    this.abort = new AbortController();
    this.supervision.seed(this.bindings, deps.clock.now());
    const { deviceBrokerUrl, deviceBrokerCredentials } = deps.config;
    const deviceAuth = deviceBrokerUrl ? deviceBrokerCredentials : deps.brokerAuth;
    this.adapters = [...byTransport].map(([kind, devices]) =>
      adapterFor(kind)({
        logger: deps.logger.child({ adapter: kind }),
        clock: deps.clock,
        devices,
        // Devices may publish to a broker on the premises; the gateway's hub login is for the hub only.
        brokerUrl: deps.config.deviceBrokerUrl ?? deps.brokerUrl,
        ...(deviceAuth ? { brokerAuth: deviceAuth } : {}),
        sessionId: `${deps.config.site}-${deps.config.id}`,
        stateDir: deps.stateDir,
        site: deps.config.site,
        bridges: this.bridges,
        onDecoded: (binding, outcome) => this.pipeline.onDecoded(binding, outcome),
        readingsStored: () => this.publisher.readingsStored(),
        onUnknownDevice: (heard) => this.onUnknownDevice(heard),
      }),
    );
    for (const a of this.adapters) await a.start(this.abort.signal);
  }

  private async stopAdapters(): Promise<void> {
    this.abort.abort();
    for (const a of this.adapters) await a.stop();
    this.adapters = [];
  }

  /** A message from a device not in the config: acknowledged, counted, logged (throttled) and shown in the health, so a person can add it. */
  private onUnknownDevice(heard: HeardDevice): void {
    const via = heard.bridge ? 'bridge' : heard.device ? 'contract' : 'topic';
    this.deps.metrics.inc('cosafe_edge_unknown_device_messages_total', { via });
    this.unknown.heard(heard, this.deps.clock.now());
    this.unknownLog.write(
      'warn',
      heard.topic,
      { code: 'COSAFE_ERR_DEVICE_UNKNOWN', topic: heard.topic.slice(0, 256), device: heard.device, bridge: heard.bridge, name: heard.name },
      'message from a device that is not configured (see cosafe status to add it)',
    );
  }

  private supervise(): void {
    const now = this.deps.clock.now();
    const audible = new Map(this.adapters.flatMap((a) => (a.hearing ? [[a.kind, a.hearing()] as const] : [])));
    this.supervision.hearing(this.bindings, (b) => audible.get(b.profile.transport)?.has(b.device.id) ?? true, now);
    void this.raise([...this.supervision.check(this.bindings, now), ...this.drops.check(this.publisher.stats().readings, now)]);
    // A port lost, a unit backed off, a device gone silent: shown at once, not at the next refresh.
    this.report.publishIfChanged();
  }

  /**
   * Counts and logs events, then writes them with their conditions and sends
   * them on the alarm lane. Resolves true once they survive a power cut,
   * flushed to the disk or acknowledged by the hub (the MQTT adapter
   * acknowledges its device then), false when the outbox refused them (the
   * condition is back as it was, so it raises again); undefined when there
   * were none.
   */
  private raise(events: AlarmEvent[]): Promise<boolean> | undefined {
    if (events.length === 0) return undefined;
    for (const event of events) {
      this.deps.metrics.inc('cosafe_edge_events_total', { class: event.class, state: event.state });
      if (event.chattering) this.deps.metrics.inc('cosafe_edge_chattering_total', { device: event.device, condition: event.condition });
      this.deps.logger.warn(
        { device: event.device, condition: event.condition, class: event.class, state: event.state, value: event.value, chattering: event.chattering },
        `${event.class} ${event.state === 'active' ? 'raised' : 'cleared'}`,
      );
    }
    const ids = this.conditions.commit(events);
    // Refused by the outbox: an MQTT device is not acknowledged, and its broker delivers the message again.
    return ids ? this.publisher.eventsAccepted(ids).then(() => true) : REFUSED;
  }
}
