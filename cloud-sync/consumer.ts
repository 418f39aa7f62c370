import { type MqttClient } from 'mqtt';
import { ALARM_LANE_BACKOFF, RECONNECT_BACKOFF } from '../core/backoff.js';
import { connectMqtt, type BrokerUrls } from '../core/mqtt-reconnect.js';
import {
  decodeAlarmEvent,
  GatewayStatus,
  ReadingBatch,
  decodeMessage,
  parseTopic,
  subscriptions,
} from '../broker/contract/index.js';
import type { Logger } from '../core/logger.js';
import { mqttAuthOptions, refusalHint, type MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import { DeviceLists } from './device-lists.js';
import { SequenceTracker } from './sequence-tracker.js';
import type { Lane, Sink } from './sinks/sink.js';
import type { AlarmInbox } from './alarm-inbox.js';

/** How long to wait before offering a message that could not be stored to the sinks again. */
const STORE_RETRY_MS = 1000;

/** How long the inbox hands messages to the sinks before it lets the event loop (the broker, in `cosafe hub`) have a turn. */
const DRAIN_BUDGET_MS = 5;

export interface ConsumerDeps {
  brokerUrl: BrokerUrls;
  /** cloud-sync's login to the hub broker (a service identity). */
  auth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  /** Every sink, in the order they get each message. */
  sinks: readonly Sink[];
  /** Which lanes this consumer runs (default both): the telemetry lane may run in a worker thread of its own. */
  lanes?: readonly Lane[];
  /** Names the persistent sessions (several cloud-sync processes on one broker need their own). */
  instance?: string;
  /** Called each time the alarm lane's subscriptions are in place (to tell a telemetry lane elsewhere). */
  onAlarmSubscribed?: () => void;
  /**
   * The alarm lane takes its messages into this inbox and handles them by
   * priority (cloud-sync/alarm-inbox.ts); without it, in the order the broker
   * delivers them.
   */
  inbox?: AlarmInbox;
  /** The number the inbox gauge shows (default this consumer's inbox; with partitions, the sum of theirs). */
  inboxSize?: () => number;
  /**
   * With partitions (cloud-sync/partitions/): whether this consumer handles
   * an alarm-lane message of `site`. One it does not is acknowledged and
   * left alone: the session of the site's own partition has it too.
   */
  accept?: (site: string) => boolean;
  /** With partitions: what the telemetry session subscribes to (its sites' readings) instead of every site's. */
  telemetryTopics?: readonly string[];
  /** A lane's connection closed (with partitions: is the lease still ours before it reconnects?). */
  onClose?: () => void;
  now?: () => number;
}

/** What each lane's session reads, and what it must not (an earlier version's session may still have it). */
const LANE_TOPICS: Record<Lane, { subscribe: string[]; unsubscribe: string[] }> = {
  alarm: { subscribe: [subscriptions.allEvents, subscriptions.allStatus], unsubscribe: [subscriptions.allReadings] },
  telemetry: { subscribe: [subscriptions.allReadings], unsubscribe: [subscriptions.allEvents, subscriptions.allStatus] },
};

/**
 * Cloud-sync's only input: the contract topics on the broker, in two lanes,
 * each a persistent MQTT session of its own, so the broker keeps and delivers
 * them apart and an alarm never queues behind a batch:
 *
 * - the alarm lane (`cosafe-cloud-sync-<instance>-alarms`): events and gateway
 *   status;
 * - the telemetry lane (`cosafe-cloud-sync-<instance>`, the session earlier
 *   versions used for everything): reading batches.
 *
 * Each session's subscriptions are made on every connect, not only when the
 * session is new, so a subscription a later version adds is made on a session
 * that already exists. The telemetry session gives up the alarm topics only
 * once the alarm session has subscribed to them, so no event finds neither.
 * Messages are routed by topic, so whatever an older session still holds is
 * handled by the right lane's sinks.
 *
 * Every message is validated; one that breaks the contract is counted and
 * logged, and never stops the ones behind it. Resent batches are recognised by
 * gateway, boot and seq. A message is acknowledged only once every sink has
 * taken it: mqtt.js sends the PUBACK when `handleMessage` calls back
 * [MQTT-4.3.2], after the handlers returned true. Until then the broker keeps
 * it in the session, and offers it again after a reconnect.
 */
export class ContractConsumer {
  private readonly clients: Partial<Record<Lane, MqttClient>> = {};
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly sequences = new SequenceTracker();
  private readonly deviceLists = new DeviceLists();
  private alarmSubscribed = false;
  private stopped = false;
  private readonly now: () => number;
  /** Inbox messages some sink has not taken yet, and which sinks still wait for each. */
  private readonly inboxWaiting = new Map<number, Set<Sink>>();
  private draining: NodeJS.Immediate | undefined;
  private inboxHeld: NodeJS.Timeout | undefined;

  constructor(private d: ConsumerDeps) {
    this.now = d.now ?? Date.now;
  }

  /** Every lane this consumer runs is connected to the broker. */
  get connected(): boolean {
    return this.running().every((lane) => this.clients[lane]?.connected === true);
  }

  /** Each lane this consumer runs, and whether it is connected. */
  lanes(): Partial<Record<Lane, boolean>> {
    return Object.fromEntries(this.running().map((lane) => [lane, this.clients[lane]?.connected ?? false]));
  }

  /** `connect: false`: only hand on what the inbox kept (with partitions, of a partition not held now). */
  async start(o: { connect?: boolean } = {}): Promise<void> {
    // What the inbox kept from before a restart goes to the sinks first.
    this.scheduleDrain();
    if (o.connect !== false) this.attach();
  }

  /** Connects the lanes' sessions (again, after `detach`). */
  attach(): void {
    for (const lane of this.running()) if (!this.clients[lane]) this.connect(lane);
  }

  /**
   * Closes the lanes' sessions but goes on handing the inbox to the sinks:
   * what was taken from the broker is this process's to deliver (with
   * partitions, a partition given up keeps its inbox until it is empty).
   */
  async detach(): Promise<void> {
    const clients = Object.values(this.clients);
    for (const lane of Object.keys(this.clients) as Lane[]) delete this.clients[lane];
    // Forced: a graceful end waits for whatever mqtt.js still has in flight, and the lease (the next holder)
    // waits for this. A PUBACK lost with the socket only means the next holder is handed that message again.
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }

  /** With partitions: the telemetry session's sites changed (a site registered or removed). */
  setTelemetryTopics(next: readonly string[]): void {
    const before = new Set(this.d.telemetryTopics ?? []);
    this.d = { ...this.d, telemetryTopics: [...next] };
    const client = this.clients.telemetry;
    if (!client?.connected) return; // subscribed in full at the next connect
    const added = next.filter((t) => !before.has(t));
    const removed = [...before].filter((t) => !next.includes(t));
    const { logger } = this.d;
    if (added.length) {
      client.subscribe(added, { qos: 1 }, (err, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (err || refused.length) logger.error({ err: err?.message, refused }, 'cloud-sync could not subscribe to the readings of newly registered sites');
      });
    }
    if (removed.length) client.unsubscribe(removed, (err) => err && logger.warn({ err: err.message }, 'cloud-sync could not unsubscribe from the readings of removed sites'));
  }

  /** The alarm lane's subscriptions have been made (in this run). */
  get alarmLaneReady(): boolean {
    return this.alarmSubscribed;
  }

  /** The alarm lane (run elsewhere) has subscribed: the telemetry session may let go of the alarm topics. */
  alarmLaneSubscribed(): void {
    this.alarmSubscribed = true;
    const telemetry = this.clients.telemetry;
    if (telemetry?.connected) this.unsubscribeOthers('telemetry', telemetry);
  }

  private running(): readonly Lane[] {
    return this.d.lanes ?? ['alarm', 'telemetry'];
  }

  /** `force`: close the sessions at once (a partition's lease waits for it). */
  async stop(o: { force?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.draining) clearImmediate(this.draining);
    clearTimeout(this.inboxHeld);
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.all(Object.values(this.clients).map((c) => c.endAsync(o.force)));
    for (const lane of Object.keys(this.clients) as Lane[]) delete this.clients[lane];
  }

  private connect(lane: Lane): void {
    const { logger } = this.d;
    const instance = this.d.instance ?? process.env.COSAFE_INSTANCE ?? 'main';
    // A persistent session (clean: false) with a fixed id: QoS 1 messages that
    // arrive while cloud-sync reconnects are kept for it by the broker.
    const client = connectMqtt(this.d.brokerUrl, {
      ...mqttAuthOptions(this.d.auth),
      clientId: lane === 'alarm' ? `cosafe-cloud-sync-${instance}-alarms` : `cosafe-cloud-sync-${instance}`,
      clean: false,
      connectTimeout: 5000,
    }, lane === 'alarm' ? ALARM_LANE_BACKOFF : RECONNECT_BACKOFF);
    this.clients[lane] = client;
    client.on('connect', (connack) => {
      logger.info({ broker: this.d.brokerUrl, lane, sessionPresent: connack.sessionPresent }, 'cloud-sync connected to broker');
      this.subscribe(lane, client);
    });
    client.on('close', () => this.d.onClose?.());
    client.on('error', (err) => {
      const hint = refusalHint(err, 'cloudSync.credentials');
      if (hint) logger.error({ err: err.message, hint, lane }, 'the hub refused cloud-sync');
      else logger.warn({ err: err.message, lane }, 'cloud-sync broker connection error');
    });
    const inbox = lane === 'alarm' ? this.d.inbox : undefined;
    if (inbox) {
      client.handleMessage = (packet, done) => (this.elsewhere(packet.topic) ? done() : this.takeIntoInbox(inbox, packet.topic, packet.payload as Buffer, done));
      return;
    }
    client.handleMessage = (packet, done) => {
      if (lane === 'alarm' && this.elsewhere(packet.topic)) return done();
      // The sinks that have not taken this message yet: a retry goes to them only.
      let waiting: Set<Sink> | undefined;
      const deliver = () => {
        if (this.stopped) return; // not acknowledged: the broker offers it again to the next run
        waiting = this.handle(packet.topic, packet.payload as Buffer, waiting);
        if (waiting.size === 0) return done();
        // Not stored (a disk failed): hold this lane, as the broker holds the message.
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          deliver();
        }, STORE_RETRY_MS);
        this.retryTimers.add(timer);
      };
      deliver();
    };
  }

  /** With partitions: an alarm-lane message another partition's session handles (acknowledged here, and left to it). */
  private elsewhere(topic: string): boolean {
    if (!this.d.accept) return false;
    const parsed = parseTopic(topic);
    // Anything that is not a site's event or status is handled (and counted as invalid) as before.
    if (!parsed || parsed.kind === 'deviceUplink' || this.d.accept(parsed.site)) return false;
    this.d.metrics.inc('cosafe_sync_alarm_lane_other_partition_total');
    return true;
  }

  /** Stores the message, then acknowledges it (PUBACK), then lets the inbox hand it on by priority. */
  private takeIntoInbox(inbox: AlarmInbox, topic: string, payload: Buffer, done: () => void): void {
    if (this.stopped) return; // not acknowledged: the broker offers it again to the next run
    try {
      inbox.add(topic, payload);
    } catch (err) {
      // Not stored, so not acknowledged: this lane waits, as the broker keeps the message, and tries again.
      this.d.metrics.inc('cosafe_sync_alarm_inbox_errors_total');
      this.d.logger.error({ code: 'COSAFE_ERR_STORE', err: (err as Error).message, topic }, 'cloud-sync could not store an alarm-lane message in its inbox; trying again');
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.takeIntoInbox(inbox, topic, payload, done);
      }, STORE_RETRY_MS);
      this.retryTimers.add(timer);
      return;
    }
    done();
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (!this.d.inbox || this.draining || this.inboxHeld || this.stopped) return;
    this.draining = setImmediate(() => {
      this.draining = undefined;
      this.drain(this.d.inbox!);
    });
  }

  /**
   * Hands the inbox to the sinks, the highest priority first, for at most
   * DRAIN_BUDGET_MS at a time: mqtt.js keeps taking new messages in between,
   * so an alarm that arrives behind a backlog of trouble signals is the next
   * one handled. A message a sink could not take (its disk failed) holds the
   * inbox and is offered again to that sink after STORE_RETRY_MS.
   */
  private drain(inbox: AlarmInbox): void {
    const until = performance.now() + DRAIN_BUDGET_MS;
    try {
      for (;;) {
        if (this.stopped) return;
        const m = inbox.next();
        if (!m) break;
        const left = this.handle(m.topic, m.payload, this.inboxWaiting.get(m.id));
        if (left.size) {
          this.inboxWaiting.set(m.id, left);
          return this.holdInbox();
        }
        this.inboxWaiting.delete(m.id);
        inbox.remove(m.id);
        if (performance.now() >= until) return this.scheduleDrain();
      }
    } catch (err) {
      this.d.metrics.inc('cosafe_sync_alarm_inbox_errors_total');
      this.d.logger.error({ code: 'COSAFE_ERR_STORE', err: (err as Error).message }, 'cloud-sync could not hand on a message of its alarm inbox; trying again');
      return this.holdInbox();
    } finally {
      this.d.metrics.set('cosafe_sync_alarm_inbox_messages', {}, this.d.inboxSize?.() ?? inbox.count());
    }
  }

  private holdInbox(): void {
    this.inboxHeld = setTimeout(() => {
      this.inboxHeld = undefined;
      this.scheduleDrain();
    }, STORE_RETRY_MS);
  }

  /** On every connect: [MQTT-3.8.4] subscribing again to a filter the session has replaces it, so this is safe to repeat. */
  private subscribe(lane: Lane, client: MqttClient): void {
    const { logger } = this.d;
    const topics = lane === 'telemetry' && this.d.telemetryTopics ? { subscribe: [...this.d.telemetryTopics] } : LANE_TOPICS[lane];
    // A partition with no registered site yet: nothing to subscribe to (an empty SUBSCRIBE is a protocol error [MQTT-3.8.3-3]).
    if (topics.subscribe.length === 0) return;
    client.subscribe(topics.subscribe, { qos: 1 }, (err, granted) => {
      // The broker answers 0x80 for a topic these credentials may not read [MQTT-3.9.3].
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (err || refused.length) {
        logger.error({ err: err?.message, refused, lane }, 'cloud-sync could not subscribe (are cloudSync.credentials those of a service?)');
        return;
      }
      if (lane === 'alarm') {
        this.unsubscribeOthers('alarm', client);
        // Now the telemetry session may let go of the alarm topics.
        this.alarmLaneSubscribed();
        this.d.onAlarmSubscribed?.();
      }
      if (lane === 'telemetry' && this.alarmSubscribed) this.unsubscribeOthers('telemetry', client);
    });
  }

  private unsubscribeOthers(lane: Lane, client: MqttClient): void {
    client.unsubscribe(LANE_TOPICS[lane].unsubscribe, (err) => {
      if (err) this.d.logger.warn({ err: err.message, lane }, 'cloud-sync could not drop the other lane’s topics from this session; they are handled all the same');
    });
  }

  /** The sinks still waiting for this message: empty when it is done with (taken by all, or invalid and skipped). */
  private handle(topic: string, payload: Buffer, waiting: Set<Sink> | undefined): Set<Sink> {
    const { metrics } = this.d;
    const done = new Set<Sink>();
    const parsed = parseTopic(topic);
    if (!parsed || parsed.kind === 'deviceUplink') return done;
    if (parsed.kind === 'readings') {
      const r = decodeMessage(ReadingBatch, payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site || r.value.gateway !== parsed.gateway) return this.invalid(topic, 'site/gateway in the message do not match the topic');
      const batch = r.value;
      const key = `${batch.site}/${batch.gateway}`;
      if (this.sequences.has(key, batch.boot, batch.seq)) {
        metrics.inc('cosafe_sync_duplicate_batches_total', { gateway: batch.gateway });
        return done;
      }
      const left = this.offer(waiting, (s) => s.onBatch?.(batch));
      if (left.size) return left;
      this.sequences.add(key, batch.boot, batch.seq);
      metrics.inc('cosafe_sync_readings_received_total', {}, batch.readings.length);
      metrics.set('cosafe_sync_sequence_holes', { gateway: batch.gateway }, this.sequences.holes(key));
      return left;
    }
    if (parsed.kind === 'events') {
      const r = decodeAlarmEvent(payload);
      if (!r.ok) return this.invalid(topic, r.error);
      if (r.value.site !== parsed.site) return this.invalid(topic, 'site in the message does not match the topic');
      const event = r.value;
      if (r.repaired && !waiting) {
        // Taken all the same: an alarm is never lost over what a device said about itself.
        metrics.inc('cosafe_sync_events_repaired_total', { class: event.class });
        this.d.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, eventId: event.eventId, repaired: r.repaired }, 'event broke the contract in descriptive fields only: cleaned them and took it');
      }
      if (!waiting) metrics.observe('cosafe_alarm_lane_latency_seconds', { class: event.class, stage: 'received' }, Math.max(0, this.now() - event.time) / 1000);
      const left = this.offer(waiting, (s) => s.onEvent?.(event));
      if (left.size === 0) metrics.inc('cosafe_sync_events_received_total', { class: event.class });
      return left;
    }
    // An empty retained message clears a status; nothing to do.
    if (payload.length === 0) return done;
    const r = decodeMessage(GatewayStatus, payload);
    if (!r.ok) return this.invalid(topic, r.error);
    // The topic is what the broker let this login publish to; a payload naming another gateway would pass for it.
    if (r.value.site !== parsed.site || r.value.gateway !== parsed.gateway) return this.invalid(topic, 'site/gateway in the message do not match the topic');
    const { status, paired } = this.deviceLists.complete(r.value);
    if (!paired) {
      metrics.inc('cosafe_sync_status_unpaired_total', { gateway: status.gateway });
      this.d.logger.debug({ topic, deviceList: status.health?.deviceList }, 'periodic status for a device list this hub has not seen: devices kept as last known until the next full status');
    }
    for (const sink of this.d.sinks) sink.onStatus?.(status);
    return done;
  }

  /** Offers a message to each sink that still waits for it (all, the first time); returns those that did not take it. */
  private offer(waiting: Set<Sink> | undefined, take: (sink: Sink) => boolean | undefined): Set<Sink> {
    const left = new Set<Sink>();
    for (const sink of waiting ?? this.d.sinks) if (take(sink) === false) left.add(sink);
    return left;
  }

  private invalid(topic: string, error: string): Set<Sink> {
    this.d.metrics.inc('cosafe_sync_invalid_messages_total');
    this.d.logger.warn({ code: 'COSAFE_ERR_CONTRACT_INVALID', topic, error }, 'message does not match the contract; skipped');
    return new Set();
  }
}
