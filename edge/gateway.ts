import { join } from 'node:path';
import { cleanText, type AlarmEvent, type GatewayHealth, type Reading } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import type { DecodeOutcome } from '../device-profiles/codecs/index.js';
import type { Profile } from '../device-profiles/schema.js';
import type { Adapter } from './adapters/adapter.js';
import { adapterFor } from './adapters/registry.js';
import { AlarmEngine, COMM_LOST, type EngineSnapshot, type EngineValue, type SignalSource } from './alarm-engine.js';
import { bindDevices, type DeviceBinding } from './device-binding.js';
import { DeviceTimeCheck } from './device-time.js';
import { Publisher } from './publisher.js';
import { StateFile } from './state-file.js';
import { ThrottledLog } from '../core/throttled-log.js';
import type { HeardDevice } from './adapters/adapter.js';
import { UnknownDevices } from './unknown-devices.js';

export { bindDevices };

export interface GatewayDeps {
  config: Config['gateway'];
  /** The hub broker (resolved by the composition root). */
  brokerUrl: string;
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
const HEALTH_EVERY_MS = 5000;
/** The gateway's own trouble condition when its outbox drops telemetry. */
export const TELEMETRY_DROPPED = 'telemetry-dropped';
/** The full-outbox trouble clears once the outbox is below this share of its limit (a deadband, so it does not chatter). */
const DROP_CLEAR_RATIO = 0.5;
/** Drops are logged at most this often (each drop is counted at once). */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * The edge gateway: adapters read devices, profiles decode, the alarm engine
 * decides, the publisher sends readings and events to the hub. Devices that stop
 * reporting are raised as trouble. Devices and profiles can be replaced while it
 * runs (`reload`).
 */
export class Gateway {
  private adapters: Adapter[] = [];
  private bindings: DeviceBinding[] = [];
  private readonly publisher: Publisher;
  private readonly alarms: AlarmEngine;
  private readonly stateFile: StateFile<EngineSnapshot>;
  private abort = new AbortController();
  private readonly lastSeen = new Map<string, number>();
  /** When each device last sent anything (unlike lastSeen, not seeded at start). */
  private readonly heard = new Map<string, number>();
  private supervisionTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  /** What the last published health said about states (not counters), to publish changes at once. */
  private healthShape = '';

  /** The gateway itself, as the source of its own trouble events. */
  private readonly self: SignalSource;
  private drops = { sinceLog: 0, loggedAt: 0 };
  /** Devices heard on the broker that are not configured, for the health report (bounded). */
  private readonly unknown = new UnknownDevices();
  private readonly unknownLog: ThrottledLog;
  /** The bridges of the config in force (a reload may change them). */
  private bridges: Config['gateway']['bridges'];
  private readonly deviceTime: DeviceTimeCheck;

  constructor(private readonly deps: GatewayDeps) {
    const { config } = deps;
    this.deviceTime = new DeviceTimeCheck({ bounds: config.deviceTime, logger: deps.logger, metrics: deps.metrics });
    this.self = { device: { id: config.id, location: `gateway ${config.id}` }, profile: { id: 'cosafe-gateway' } };
    this.publisher = new Publisher({
      brokerUrl: deps.brokerUrl,
      ...(deps.brokerAuth ? { auth: deps.brokerAuth } : {}),
      site: config.site,
      gateway: config.id,
      batch: config.batch,
      outbox: { path: join(deps.stateDir, `outbox-${config.id}.db`), ...config.outbox },
      logger: deps.logger,
      clock: deps.clock,
      metrics: deps.metrics,
      onTelemetryDropped: (dropped) => this.onTelemetryDropped(dropped),
    });
    this.stateFile = new StateFile(join(deps.stateDir, `gateway-${config.id}-conditions.json`));
    // Condition state survives a restart: an alarm active before it is not raised
    // again as new, and its clear is still reported when it comes.
    const snapshot = this.readSnapshot();
    this.alarms = new AlarmEngine({ site: config.site, gateway: config.id, ...(snapshot ? { snapshot } : {}) });
    this.bindings = bindDevices(config, deps.profiles);
    this.bridges = config.bridges;
    // One line per unknown topic a minute: what to add, not a flood.
    this.unknownLog = new ThrottledLog(deps.logger, deps.clock, 60_000);
  }

  async start(): Promise<void> {
    await this.publisher.start();
    await this.startAdapters();
    this.supervisionTimer = setInterval(() => this.supervise(), SUPERVISION_TICK_MS);
    this.healthTimer = setInterval(() => this.publishHealth(), HEALTH_EVERY_MS);
    this.publishHealth();
  }

  async stop(): Promise<void> {
    clearInterval(this.supervisionTimer);
    clearInterval(this.healthTimer);
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
    const outbox = this.publisher.stats();
    return {
      at: this.deps.clock.now(),
      adapters: this.adapters.map((a) => a.health()),
      devices: this.bindings.map((b) => ({
        id: b.device.id,
        profile: b.profile.id,
        transport: b.profile.transport,
        lastSeen: this.heard.get(b.device.id) ?? null,
        commLost: this.alarms.isActive(b.device.id, COMM_LOST),
        // Where it is, for the owner's page ("1F kitchen"); the config's words, bounded as the contract says.
        ...(b.device.location ? { location: cleanText(b.device.location) } : {}),
      })),
      activeConditions: this.alarms.activeConditions(),
      // An error message of the disk may span lines; the status is text for a page.
      outbox: { ...outbox, ...(outbox.error ? { error: cleanText(outbox.error, 1000) } : {}) },
      unknownDevices: this.unknown.list(),
    };
  }

  private publishHealth(): void {
    const health = this.health();
    this.healthShape = healthShape(health);
    this.publisher.publishStatus(health);
  }

  private async startAdapters(): Promise<void> {
    const { deps } = this;
    const byTransport = new Map<string, DeviceBinding[]>();
    for (const b of this.bindings) byTransport.set(b.profile.transport, [...(byTransport.get(b.profile.transport) ?? []), b]);
    this.abort = new AbortController();
    const now = deps.clock.now();
    // A device gets a full silence period after (re)start before it counts as lost.
    for (const b of this.bindings) if (!this.lastSeen.has(b.device.id)) this.lastSeen.set(b.device.id, now);
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
        onDecoded: (binding, outcome) => this.onDecoded(binding, outcome),
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

  private onDecoded(binding: DeviceBinding, outcome: DecodeOutcome): void {
    const { metrics, logger } = this.deps;
    const device = binding.device.id;
    if (outcome.errors.length) {
      metrics.inc('cosafe_edge_decode_errors_total', { device });
      logger.warn({ code: 'COSAFE_ERR_PAYLOAD_INVALID', device, profile: binding.profile.id, errors: outcome.errors }, 'device input not decoded');
    }
    const now = this.deps.clock.now();
    // A bridge that says the device is offline (zigbee2mqtt availability): lost now, not after the silence limit.
    if (outcome.availability === 'offline') {
      if (!this.alarms.isActive(device, COMM_LOST)) this.emit(this.alarms.signal(binding, { key: COMM_LOST, class: 'trouble', state: 'active', time: now, text: outcome.availabilityText ?? 'reported offline' }));
      return;
    }
    // Any input, even one that does not decode, proves the link: silence is what supervision is about.
    this.lastSeen.set(device, now);
    this.heard.set(device, now);
    const events: AlarmEvent[] = [];
    if (this.alarms.isActive(device, COMM_LOST)) {
      events.push(...this.alarms.signal(binding, { key: COMM_LOST, class: 'trouble', state: 'cleared', time: now, text: 'device reports again' }));
    }
    const readings: Reading[] = [];
    for (const decoded of outcome.values) {
      // A device time the gateway cannot believe: the value stays, the receive time replaces the time.
      const v: EngineValue = this.deviceTime.plausible(device, decoded.time, now)
        ? decoded
        : { ...decoded, time: now, quality: decoded.quality === 'bad' ? 'bad' : 'uncertain' };
      if (v.quality === 'bad') {
        metrics.inc('cosafe_edge_bad_readings_total', { device, metric: v.metric });
      }
      readings.push({ device, metric: v.metric, value: v.value, unit: v.unit, time: v.time, quality: v.quality, profile: binding.profile.id });
      events.push(...this.alarms.evaluate(binding, v));
    }
    const signals = outcome.signals.map((s) => (this.deviceTime.plausible(device, s.time, now) ? s : { ...s, time: now }));
    if (outcome.resetAll) events.push(...this.alarms.resetSignals(binding, outcome.resetAt !== undefined && this.deviceTime.plausible(device, outcome.resetAt, now) ? outcome.resetAt : now));
    for (const s of signals) events.push(...this.alarms.signal(binding, s));
    this.emit(events);
    if (readings.length) {
      metrics.inc('cosafe_edge_readings_total', {}, readings.length);
      this.publisher.addReadings(readings);
    }
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

  /** Raises "communication lost" for every device silent longer than its profile allows. */
  private supervise(): void {
    const now = this.deps.clock.now();
    const events: AlarmEvent[] = [];
    for (const b of this.bindings) {
      const sup = b.profile.supervision;
      if (!sup) continue;
      const silentMs = (sup.silentAfterS ?? sup.reportIntervalS * 3) * 1000;
      const last = this.lastSeen.get(b.device.id) ?? now;
      if (now - last > silentMs && !this.alarms.isActive(b.device.id, COMM_LOST)) {
        events.push(...this.alarms.signal(b, { key: COMM_LOST, class: 'trouble', state: 'active', time: now, text: `no reading for ${Math.round((now - last) / 1000)} s` }));
      }
    }
    const { maxTelemetryReadings } = this.deps.config.outbox;
    if (this.alarms.isActive(this.self.device.id, TELEMETRY_DROPPED) && this.publisher.stats().readings < maxTelemetryReadings * DROP_CLEAR_RATIO) {
      events.push(...this.alarms.signal(this.self, { key: TELEMETRY_DROPPED, class: 'trouble', state: 'cleared', time: now, text: 'outbox below half full again' }));
    }
    this.emit(events);
    // A port lost, a unit backed off, a device gone silent: shown at once, not at the next refresh.
    if (healthShape(this.health()) !== this.healthShape) this.publishHealth();
  }

  /**
   * The outbox was full and dropped its oldest readings: counted (by the
   * publisher), logged, and raised as trouble through the normal event path,
   * which never drops events. The condition stays active until the outbox is
   * half empty, so a full outbox raises one event, not one per drop.
   */
  private onTelemetryDropped(dropped: number): void {
    const now = this.deps.clock.now();
    this.drops.sinceLog += dropped;
    if (now - this.drops.loggedAt >= DROP_LOG_EVERY_MS) {
      this.deps.logger.error(
        { code: 'COSAFE_ERR_OUTBOX_FULL', dropped: this.drops.sinceLog, limit: this.deps.config.outbox.maxTelemetryReadings },
        'outbox full: dropped the oldest readings',
      );
      this.drops = { sinceLog: 0, loggedAt: now };
    }
    const text = `outbox full (${this.deps.config.outbox.maxTelemetryReadings} readings): dropping the oldest telemetry`;
    this.emit(this.alarms.signal(this.self, { key: TELEMETRY_DROPPED, class: 'trouble', state: 'active', time: now, text }));
  }

  private emit(events: AlarmEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) {
      this.deps.metrics.inc('cosafe_edge_events_total', { class: event.class, state: event.state });
      if (event.chattering) this.deps.metrics.inc('cosafe_edge_chattering_total', { device: event.device, condition: event.condition });
      this.deps.logger.warn(
        { device: event.device, condition: event.condition, class: event.class, state: event.state, value: event.value, chattering: event.chattering },
        `${event.class} ${event.state === 'active' ? 'raised' : 'cleared'}`,
      );
      this.publisher.publishEvent(event);
    }
    this.saveSnapshot();
  }

  private readSnapshot(): EngineSnapshot | undefined {
    try {
      return this.stateFile.read();
    } catch (err) {
      // A damaged state file must not keep the gateway from protecting the site.
      this.deps.logger.error({ err: (err as Error).message }, 'condition state unreadable; starting with every condition normal');
      return undefined;
    }
  }

  private saveSnapshot(): void {
    try {
      this.stateFile.write(this.alarms.snapshot());
    } catch (err) {
      this.deps.metrics.inc('cosafe_edge_state_write_errors_total');
      this.deps.logger.error({ err: (err as Error).message }, 'could not save condition state');
    }
  }
}

/** The states in a health report, without counters and times. */
function healthShape(h: GatewayHealth): string {
  return JSON.stringify([h.adapters.map((a) => [a.kind, a.connected, a.ports?.map((p) => p.state)]), h.devices.map((d) => d.commLost), h.activeConditions]);
}
