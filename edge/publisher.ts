import type { BrokerUrls } from '../core/mqtt-reconnect.js';
import { randomUUID } from 'node:crypto';
import { ALARM_ACK_COMMAND, AlarmAckCommand, decodeMessage, subscriptions, topics, type AlarmEvent, type GatewayHealth, type GatewayStatus, type Reading } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { HubLink } from './hub-link.js';
import { EventOutbox, type ConditionChange, type EventMessage } from './outbox/event-outbox.js';
import { TelemetryOutbox, type BatchMessage, type TelemetryOutboxStats } from './outbox/telemetry-outbox.js';

export interface PublisherOptions {
  brokerUrl: BrokerUrls;
  /** The gateway's login to the hub broker. */
  auth?: MqttClientAuth;
  site: string;
  gateway: string;
  batch: { maxReadings: number; maxDelayMs: number };
  outbox: {
    /** Telemetry (readings and batches). */
    path: string;
    /** The alarm lane: events and condition state. */
    eventsPath: string;
    maxTelemetryReadings: number;
    maxInFlight: number;
    fsyncEvents: boolean;
  };
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Called when the outbox was full and dropped its oldest readings. */
  onTelemetryDropped?: (dropped: number) => void;
}

export interface PublisherStats extends TelemetryOutboxStats {
  /** Events not yet acknowledged by the hub. */
  events: number;
  /** Both links to the hub are up. */
  connected: boolean;
  /** Each lane's link to the hub. */
  links: { alarm: boolean; telemetry: boolean };
  error?: string;
}

/** How long `stop()` waits for messages in flight to be acknowledged (they stay in the outbox anyway). */
const STOP_GRACE_MS = 1000;

/** What `readingsStored` answers when no reading waits for its transaction. */
const STORED = Promise.resolve(true);
/** While the outbox refuses readings (a full disk), they wait in memory and are tried again: after this, doubling up to the maximum. */
const COMMIT_RETRY_MIN_MS = 200;
const COMMIT_RETRY_MAX_MS = 5000;
/** Readings waiting in memory at most while the outbox refuses them (or the outbox's own limit, if lower); past it the oldest go, counted as dropped. */
const WAITING_MAX = 100_000;

/** Readings handed over and not yet in the outbox: those of this turn of the event loop, or those the outbox refused. */
interface ReadingGroup {
  readings: Reading[][];
  count: number;
  /** Of `count`, readings already counted as not stored (so a retry does not count them again). */
  counted: number;
  stored: Promise<boolean>;
  resolve: (ok: boolean) => void;
  cancel: () => void;
}

/**
 * The gateway's way to the hub, in two lanes, each with its outbox file and
 * its own MQTT connection (edge/hub-link.ts):
 *
 * - the alarm lane: events (alarm, supervisory, trouble) and the retained
 *   status with the last will, so the hub knows at once when this link, the one
 *   alarms take, is gone;
 * - the telemetry lane: readings, sealed into batches by size and time, with a
 *   backlog replayed oldest first alternating with live batches.
 *
 * Everything goes into its outbox first and counts as accepted once it is
 * there; it leaves on the hub's PUBACK.
 */
export class Publisher {
  /** Changes every start, so cloud-sync does not take a new run's sequence for duplicates of the last one. */
  readonly boot = randomUUID();
  private readonly telemetry: TelemetryOutbox;
  private readonly events: EventOutbox;
  private readonly alarmLink: HubLink<EventMessage>;
  private readonly telemetryLink: HubLink<BatchMessage>;
  private sealTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private lastError: string | undefined;
  private onlineSince = 0;
  /** The full health report (edge/health-report.ts), asked for fresh on every connect. */
  private statusSource: (() => GatewayHealth) | undefined;
  private opened = false;
  /** Readings not yet in the outbox (addReadings). */
  private group: ReadingGroup | undefined;
  /** The outbox refuses readings: the wait before the next try. */
  private commitRetryMs: number | undefined;

  constructor(private readonly o: PublisherOptions) {
    this.telemetry = new TelemetryOutbox({
      path: o.outbox.path,
      site: o.site,
      gateway: o.gateway,
      boot: this.boot,
      maxTelemetryReadings: o.outbox.maxTelemetryReadings,
      batchMaxReadings: o.batch.maxReadings,
    });
    this.events = new EventOutbox({ path: o.outbox.eventsPath, fsyncEvents: o.outbox.fsyncEvents });
    const base = { brokerUrl: o.brokerUrl, ...(o.auth ? { auth: o.auth } : {}), maxInFlight: o.outbox.maxInFlight, logger: o.logger, metrics: o.metrics };
    const statusTopic = topics.status(o.site, o.gateway);
    this.alarmLink = new HubLink<EventMessage>({
      ...base,
      lane: 'event',
      clientId: `cosafe-gw-${o.site}-${o.gateway}-alarms`,
      topic: topics.events(o.site, o.gateway),
      queue: this.events,
      weight: () => 1,
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(this.offline())), qos: 1, retain: true },
      onConnect: () => {
        this.onlineSince = this.o.clock.now();
        this.publishStatus(this.statusSource?.());
      },
      // Going back up on the alarm lane: the hub tells the site when a fire department acknowledged one of its alarms.
      subscribe: [subscriptions.gatewayCommands(o.site, o.gateway)],
      urgent: () => this.events.alarmPending(),
      onMessage: (topic, payload) => this.onCommand(topic, payload),
      onAck: (m) => {
        this.updateGauges();
        const event = JSON.parse(m.payload) as Pick<AlarmEvent, 'class' | 'time'>;
        // From the device's own time to the hub's PUBACK: the edge half of the alarm lane.
        this.o.metrics.observe('cosafe_alarm_lane_latency_seconds', { class: event.class, stage: 'published' }, Math.max(0, this.o.clock.now() - event.time) / 1000);
      },
    });
    this.telemetryLink = new HubLink<BatchMessage>({
      ...base,
      lane: 'readings',
      clientId: `cosafe-gw-${o.site}-${o.gateway}`,
      topic: topics.readings(o.site, o.gateway),
      queue: this.telemetry,
      weight: (m) => m.readings,
      onConnect: () => this.telemetry.markBacklog(),
      beforeTake: () => {
        const since = this.telemetry.openSinceMs;
        if (since !== undefined && this.o.clock.now() - since >= this.o.batch.maxDelayMs) this.seal();
      },
      onAck: () => this.updateGauges(),
    });
  }

  /** The condition state recorded with the last events (the alarm engine starts from it). */
  get conditions(): EventOutbox {
    return this.events;
  }

  /** Opens both outboxes (taking over events an earlier version kept with telemetry); `start` does it if it was not done. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.telemetry.open(this.o.clock.now());
    this.events.open();
    const legacy = this.telemetry.legacyEvents();
    if (legacy.length) {
      this.events.importEvents(legacy);
      this.o.logger.info({ events: legacy.length }, 'moved events of an earlier version to the alarm lane of the outbox');
    }
    this.telemetry.dropLegacyEvents();
  }

  async start(): Promise<void> {
    this.open();
    const backlog = this.stats();
    if (backlog.events || backlog.readings) this.o.logger.info({ events: backlog.events, readings: backlog.readings }, 'outbox holds messages from before the restart; sending them');
    this.updateGauges();
    this.alarmLink.start();
    this.telemetryLink.start();
  }

  /**
   * Accepts readings. They go into the outbox at the end of this turn of the
   * event loop, with every other reading handed over in it, in one transaction
   * (group commit): a thousand devices' single readings were a transaction
   * each, half of the gateway's CPU in the devices' flood. `readingsStored`
   * says when they are on disk. When the outbox refuses them (a full disk),
   * they wait in memory, with those that come meanwhile, and are tried again
   * until it takes them (at most WAITING_MAX or the outbox's limit; past it
   * the oldest are dropped and counted, as the outbox itself does at its limit).
   */
  addReadings(readings: Reading[]): void {
    if (readings.length === 0) return;
    if (!this.group) {
      let resolve!: (ok: boolean) => void;
      const stored = new Promise<boolean>((r) => (resolve = r));
      const timer = setImmediate(() => this.commitReadings());
      this.group = { readings: [], count: 0, counted: 0, stored, resolve, cancel: () => clearImmediate(timer) };
    }
    const group = this.group;
    group.readings.push(readings);
    group.count += readings.length;
    if (this.commitRetryMs !== undefined && group.count > this.waitingMax) this.dropWaiting(group);
  }

  /**
   * Resolves once every reading handed over so far is in the outbox (true:
   * safe from a crash of the process); false only when the publisher stopped
   * before the outbox would take them (not accepted: an MQTT device was not
   * acknowledged, so its broker delivers the message again). An MQTT device
   * gets its PUBACK then.
   */
  readingsStored(): Promise<boolean> {
    return this.group?.stored ?? STORED;
  }

  /** Writes the readings waiting in one transaction, then sends what they sealed. */
  private commitReadings(): void {
    const group = this.group;
    if (!group) return;
    group.cancel();
    const readings = group.readings.length === 1 ? group.readings[0]! : group.readings.flat();
    let dropped = 0;
    const sealedBefore = this.telemetry.batchesSealed;
    try {
      dropped = this.telemetry.addReadings(readings, this.o.clock.now());
    } catch (err) {
      // group.readings stay one array per input, so that dropWaiting drops the oldest inputs, not all of them or none.
      this.commitFailed(group, err);
      return;
    }
    this.group = undefined;
    if (this.commitRetryMs !== undefined) this.o.logger.info({ readings: readings.length }, 'the outbox takes readings again; those that waited are stored');
    this.commitRetryMs = undefined;
    this.lastError = undefined;
    group.resolve(true);
    if (dropped > 0) this.telemetryDropped(dropped);
    this.scheduleSeal();
    // Only a new batch can be sent: asking the outbox for one at every commit would find none most times.
    if (this.telemetry.batchesSealed !== sealedBefore) this.telemetryLink.pump();
    this.updateGauges();
  }

  /** The outbox refused the group: counted (each reading once), logged once, tried again later; at stop, given up (not accepted). */
  private commitFailed(group: ReadingGroup, err: unknown): void {
    const first = this.commitRetryMs === undefined;
    this.outboxFailed(err, group.count - group.counted, 'readings', first ? 'the outbox could not store readings: they wait in memory and are tried again; MQTT devices are acknowledged once they are stored' : undefined);
    group.counted = group.count;
    if (this.stopping) {
      this.group = undefined;
      group.resolve(false);
      return;
    }
    this.commitRetryMs = first ? COMMIT_RETRY_MIN_MS : Math.min(COMMIT_RETRY_MAX_MS, this.commitRetryMs! * 2);
    const timer = setTimeout(() => this.commitReadings(), this.commitRetryMs);
    group.cancel = () => clearTimeout(timer);
  }

  /** Readings that may wait in memory while the outbox refuses them. */
  private get waitingMax(): number {
    return Math.min(WAITING_MAX, this.o.outbox.maxTelemetryReadings);
  }

  /** Past waitingMax while the outbox refuses readings: the oldest go (whole inputs), counted as dropped. */
  private dropWaiting(group: ReadingGroup): void {
    let dropped = 0;
    const max = this.waitingMax;
    while (group.count - dropped - (group.readings[0]?.length ?? 0) >= max) dropped += group.readings.shift()!.length;
    group.count -= dropped;
    group.counted = Math.max(0, group.counted - dropped);
    if (dropped > 0) this.telemetryDropped(dropped);
  }

  private telemetryDropped(dropped: number): void {
    this.o.metrics.inc('cosafe_edge_outbox_dropped_total', {}, dropped);
    this.o.onTelemetryDropped?.(dropped);
  }

  /**
   * Records events with the condition state they leave behind, in one
   * transaction, and sends them at once on the alarm lane (they do not wait for
   * a batch: they are the reason this system exists). Returns their ids in
   * the outbox; undefined: the disk refused them, nothing was written.
   */
  recordEvents(events: readonly AlarmEvent[], changes: readonly ConditionChange[]): number[] | undefined {
    let ids: number[];
    try {
      ids = this.events.record(events, changes);
      this.lastError = undefined;
    } catch (err) {
      this.outboxFailed(err, events.length, 'event');
      return undefined;
    }
    this.alarmLink.pump();
    this.updateGauges();
    return ids;
  }

  /** Resolves once these events survive a power cut: flushed to the disk (`fsyncEvents`) or acknowledged by the hub. */
  eventsAccepted(ids: readonly number[]): Promise<void> {
    return this.events.accepted(ids);
  }

  /** Where a full health report comes from when the alarm link connects (again), so the status it publishes then is fresh. */
  statusFrom(source: () => GatewayHealth): void {
    this.statusSource = source;
  }

  /** The retained status carries the gateway's full health report, so the hub shows it without asking. */
  publishStatus(health: GatewayHealth | undefined): void {
    this.sendStatus(health, true);
  }

  /**
   * A periodic report between full ones: not retained, so that the retained
   * status keeps the device list for a hub that subscribes later.
   */
  publishStatusUpdate(health: GatewayHealth): void {
    this.sendStatus(health, false);
  }

  private sendStatus(health: GatewayHealth | undefined, retain: boolean): void {
    const status: GatewayStatus = { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'online', boot: this.boot, since: this.onlineSince, ...(health ? { health } : {}) };
    this.alarmLink.publishAside(topics.status(this.o.site, this.o.gateway), JSON.stringify(status), retain);
  }

  stats(): PublisherStats {
    const links = { alarm: this.alarmLink.connected, telemetry: this.telemetryLink.connected };
    const error = this.lastError ?? this.events.error;
    const telemetry = this.telemetry.stats();
    // Readings of this turn, about to be written, are accepted already.
    const waiting = this.group?.count ?? 0;
    return {
      ...telemetry,
      readings: telemetry.readings + waiting,
      openReadings: telemetry.openReadings + waiting,
      events: this.events.stats().events,
      inFlight: telemetry.inFlight + this.events.stats().inFlight,
      connected: links.alarm && links.telemetry,
      links,
      ...(error ? { error } : {}),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Readings waiting (this turn's, or some the outbox refused) are tried once more before it closes.
    this.commitReadings();
    clearTimeout(this.sealTimer);
    await Promise.all([
      this.telemetryLink.stop(STOP_GRACE_MS),
      this.alarmLink.stop(STOP_GRACE_MS, { topic: topics.status(this.o.site, this.o.gateway), payload: JSON.stringify(this.offline()), retain: true }),
    ]);
    this.telemetry.close();
    this.events.close();
  }

  private onCommand(topic: string, payload: Buffer): void {
    if (topic !== topics.gatewayCommand(this.o.site, this.o.gateway, ALARM_ACK_COMMAND)) return;
    const ack = decodeMessage(AlarmAckCommand, payload);
    if (!ack.ok) return this.o.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error: ack.error }, 'command does not match the contract; ignored');
    const a = ack.value;
    this.o.logger.warn({ device: a.device, condition: a.condition, by: a.acknowledgedBy, operator: a.operator, channel: a.channel, at: new Date(a.at).toISOString() }, 'a fire department acknowledged the alarm');
  }

  private offline(): GatewayStatus {
    return { v: 1, gateway: this.o.gateway, site: this.o.site, state: 'offline', boot: this.boot, since: this.o.clock.now() };
  }

  /** Open readings are sealed into a batch `maxDelayMs` after the first of them arrived. */
  private scheduleSeal(): void {
    if (this.sealTimer || this.stopping) return;
    const since = this.telemetry.openSinceMs;
    if (since === undefined) return;
    const wait = Math.max(0, since + this.o.batch.maxDelayMs - this.o.clock.now());
    this.sealTimer = setTimeout(() => {
      this.sealTimer = undefined;
      // While the hub is away there is no hurry: readings wait unsealed until a batch is full.
      if (!this.telemetryLink.connected || this.stopping) return;
      this.seal();
      this.telemetryLink.pump();
    }, wait);
  }

  private seal(): void {
    try {
      this.telemetry.sealOpen(this.o.clock.now());
    } catch (err) {
      // The readings stay open in the outbox; sealing is tried again with the next ones.
      this.lastError = (err as Error).message;
      this.o.logger.error({ code: 'COSAFE_ERR_OUTBOX', err: this.lastError }, 'outbox could not seal a batch');
    }
  }

  private updateGauges(): void {
    this.o.metrics.set('cosafe_edge_outbox_readings', {}, this.telemetry.stats().readings);
    this.o.metrics.set('cosafe_edge_outbox_events', {}, this.events.stats().events);
  }

  /** Counts what the outbox refused, and logs it (`message`), unless it was logged already (undefined). */
  private outboxFailed(err: unknown, count: number, kind: 'readings' | 'event', message: string | undefined = 'outbox write failed: these were not accepted'): void {
    this.lastError = (err as Error).message;
    if (count > 0) this.o.metrics.inc('cosafe_edge_outbox_errors_total', { kind }, count);
    if (message) this.o.logger.error({ code: 'COSAFE_ERR_OUTBOX', err: this.lastError, kind, count }, message);
  }
}
