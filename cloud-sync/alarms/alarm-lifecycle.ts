import {
  ALARM_ACK_COMMAND,
  DispatchAck,
  decodeMessage,
  parseAckTopic,
  topics,
  type AlarmAckCommand,
  type AlarmEvent,
  type AlarmLifecycleState,
  type CapMsgType,
  type DispatchMessage,
} from '../../broker/contract/index.js';
import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { AlarmsConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { CredentialRole } from '../../core/vocabulary.js';
import type { DeliveryLog, PendingDelivery } from '../dispatch/delivery-log.js';
import type { Departments } from '../dispatch/departments.js';
import { may, type Principal } from '../http/permissions.js';
import type { SiteLookup } from '../registry/site-registry.js';
import { COPY_JOURNAL, copyMessages, type AlarmCopy } from './alarm-copy.js';
import { AlarmStore, alarmIdOf, type AlarmRecord, type JournalEntry, type StoredMessage, type TransitionRow } from './alarm-store.js';
import { awaitsAck, mayShelve, transition } from './alarm-states.js';
import { buildCapAlert, type CapReference } from './cap.js';
import type { Scheduler } from './scheduler.js';

export interface AlarmLifecycleDeps {
  store: AlarmStore;
  log: DeliveryLog;
  departments: Departments;
  config: AlarmsConfig;
  sites: SiteLookup;
  scheduler: Scheduler;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Starts deliveries recorded in the log (after their transaction committed). */
  deliver(p: PendingDelivery): void;
  /**
   * With cloudSync.partitions: every worker reads every acknowledgement, and
   * one of an alarm this worker never had is another worker's, not a refusal.
   */
  othersHaveAlarms?: boolean;
  /**
   * With cloudSync.partitions: whether this worker holds the partition of a
   * site now. Only the holder escalates an alarm and applies acknowledgements
   * to it; another worker's copy of it is stale (cloud-sync/partitions/alarm-handover.ts).
   */
  holds?: (site: string) => boolean;
}

export type AckChannel = 'http' | 'mqtt';
/** `elsewhere`: the alarm is of a partition another worker holds (not a refusal: the holder applies it). */
export type AckRefusal = 'unknown' | 'forbidden' | 'wrong-district' | 'stale' | 'not-active' | 'unstamped' | 'invalid' | 'elsewhere';

export interface AckRequest {
  alarmId?: string;
  eventId?: string;
  who: Principal;
  channel: AckChannel;
  operator?: string;
  note?: string;
  /** MQTT: the district level of the ack topic. */
  topicDistrict?: string;
  /** The department's word on the public: warn residents (true) or end a warning (false). */
  warnPublic?: boolean;
}

/** Told of every alarm after a change of it has committed (public alerts, agency feeds, the consoles' live stream); a delivery is not a change. */
export type AlarmObserver = (alarm: AlarmRecord) => void;

export type AckResult = { ok: true; alarm: AlarmRecord; already: boolean } | { ok: false; reason: AckRefusal; alarm?: AlarmRecord };
export type ShelveResult = { ok: true; alarm: AlarmRecord } | { ok: false; reason: 'unknown' | 'forbidden' | 'not-shelvable' | 'invalid'; message: string };

const escalationKey = (id: string) => `escalate:${id}`;

/** The hub itself, as the source of the trouble it raises about a site (never a device id of a site: those come from its gateway). */
export const HUB_DEVICE = 'cosafe-hub';
/** The hub's trouble condition: a site sends to the hub but is not in the registry. */
export const SITE_UNREGISTERED = 'site-unregistered';
const unshelveKey = (id: string) => `unshelve:${id}`;

/**
 * The alarm lifecycle at the hub (ISA-18.2): one alarm per site, device and
 * condition; every event of the edge and every acknowledgement moves it along
 * the state transition diagram (alarm-states.ts), journaled durably with who,
 * when and through which channel, in the same transaction as the deliveries
 * it causes. An unacknowledged alarm escalates step after step, for as long as
 * it stays unacknowledged; the due times are stored, so a restart keeps them.
 */
export class AlarmLifecycle {
  private readonly unregistered = new Set<string>();
  private readonly observers = new Set<AlarmObserver>();
  private readonly deliveryObservers = new Set<AlarmObserver>();
  private readonly changeObservers = new Set<AlarmObserver>();

  constructor(private readonly d: AlarmLifecycleDeps) {}

  /** Re-arms the timers a restart interrupted, at the due times stored before. */
  start(): void {
    for (const a of this.d.store.timed()) {
      // With partitions, only those of partitions held: the others are armed when their partition is taken (`armWhere`).
      if (!this.holding(a.site)) continue;
      if (a.escalationDue !== null) this.d.scheduler.schedule(escalationKey(a.id), a.escalationDue, () => this.escalate(a.id));
      if (a.shelved) this.d.scheduler.schedule(unshelveKey(a.id), a.shelved.until, () => this.unshelve(a.id, { id: 'hub', role: 'admin' }, 'expired'));
    }
    this.updateGauges();
  }

  stop(): void {
    this.d.scheduler.stop();
  }

  /** Calls `observer` with every alarm whose state changed, once the change is durable; returns the unsubscribe. */
  observe(observer: AlarmObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * Calls `observer` with an alarm after every durable change of its record:
   * transitions, escalations, deliveries, shelving, a department's word on
   * the public (what a successor worker needs; returns the unsubscribe).
   */
  observeChanges(observer: AlarmObserver): () => void {
    this.changeObservers.add(observer);
    return () => this.changeObservers.delete(observer);
  }

  /** Calls `observer` with an alarm each time one of its messages was delivered (a console's timeline); returns the unsubscribe. */
  observeDeliveries(observer: AlarmObserver): () => void {
    this.deliveryObservers.add(observer);
    return () => this.deliveryObservers.delete(observer);
  }

  /** Sites that sent events but are not in the registry. */
  unregisteredSites(): string[] {
    return [...this.unregistered];
  }

  /**
   * Applies an event of the edge. True once it is durable (journaled, its
   * deliveries recorded); false when the store failed, so the consumer does
   * not acknowledge it and it comes again. A resent event (same event id)
   * changes nothing.
   */
  onEvent(event: AlarmEvent): boolean {
    const { store, clock, metrics, logger } = this.d;
    const id = alarmIdOf(event.site, event.device, event.condition);
    let out: { deliveries: PendingDelivery[]; alarm: AlarmRecord; changed?: AlarmLifecycleState; late?: boolean } | undefined;
    try {
      out = store.transaction(() => {
        if (store.seen(event.eventId)) return undefined;
        const now = clock.now();
        const site = this.d.sites(event.site);
        const before = store.get(id);
        const actor = `gateway ${event.site}/${event.gateway}`;
        if (before && isLateClear(event, before.lastEvent)) {
          // Never clear on older evidence: the condition was active again after this "cleared" (a false all-clear is the worst outcome).
          store.journal({ alarmId: id, at: now, kind: 'late', from: before.state, to: before.state, actor, channel: 'mqtt-event', eventId: event.eventId, detail: { state: event.state, time: event.time, newerEvent: before.lastEvent.eventId, newerTime: before.lastEvent.time } });
          store.markSeen(event.eventId, id, before.activation);
          return { deliveries: [], alarm: before, late: true };
        }
        const a: AlarmRecord = { ...(before ?? this.fresh(id, event, now)), lastEvent: event, class: event.class, updatedAt: now };
        const input = event.state === 'active' ? 'activate' : 'clear';
        const t = transition(a.state, input);
        if (!t) {
          store.journal({ alarmId: id, at: now, kind: 'repeat', from: a.state, to: a.state, actor, channel: 'mqtt-event', eventId: event.eventId, detail: { state: event.state } });
          store.markSeen(event.eventId, id, a.activation);
          // A repeat that is older than what the alarm has seen (it came late) does not stand for its latest state.
          if (before && before.lastEvent.time > event.time) a.lastEvent = before.lastEvent;
          store.put(a);
          return { deliveries: [], alarm: a };
        }
        const from = a.state;
        if (t.newActivation) {
          Object.assign(a, {
            activation: a.activation + 1,
            activatingEvent: event.eventId,
            district: site?.district ?? null,
            ack: null,
            alertId: null,
            alertSent: null,
            escalationStep: 0,
            escalationDue: null,
            dispatchedAt: null,
            firstDeliveredAt: null,
            notified: [],
            updates: 0,
            publicWarning: null,
          });
        }
        if (input === 'activate') a.ack = null;
        a.state = t.to;
        a.since = now;
        store.journal({ alarmId: id, at: now, kind: 'transition', from, to: t.to, actor, channel: 'mqtt-event', eventId: event.eventId, detail: { activation: a.activation, class: event.class, ...(a.shelved ? { shelved: true } : {}), ...(event.test ? { test: true } : {}) } });
        store.markSeen(event.eventId, id, a.activation);
        const deliveries = t.cap ? this.dispatch(a, t.cap, event, now) : [];
        if (a.state !== 'active-unacknowledged') a.escalationDue = null;
        store.put(a);
        return { deliveries, alarm: a, changed: t.to };
      });
    } catch (err) {
      logger.error({ code: 'COSAFE_ERR_ALARM_STORE', err: (err as Error).message, eventId: event.eventId }, 'could not journal an alarm event; it will be offered again');
      return false;
    }
    if (!out) {
      metrics.inc('cosafe_alarm_duplicate_events_total');
      return true;
    }
    if (out.late) {
      metrics.inc('cosafe_alarm_late_events_total');
      logger.warn({ code: 'COSAFE_ERR_EVENT_LATE', alarmId: id, eventId: event.eventId, time: event.time, newerTime: out.alarm.lastEvent.time }, 'a "cleared" came after a newer activation of its condition: not applied, the alarm stays active');
      return true;
    }
    if (out.changed) metrics.inc('cosafe_alarm_transitions_total', { class: event.class, to: out.changed });
    this.checkSite(event.site, event.gateway);
    this.afterCommit(out.alarm, out.deliveries);
    return true;
  }

  /** An acknowledgement on `dispatch/<district>/acks/<eventId>`, with the identity the broker stamped. */
  ackFromMqtt(topic: string, payload: Buffer): AckResult {
    const t = parseAckTopic(topic);
    const r = decodeMessage(DispatchAck, payload);
    const role = r.ok ? CredentialRole.safeParse(r.value.identity?.role) : undefined;
    if (!t || !r.ok || !r.value.identity || !role?.success) {
      const reason: AckRefusal = !t || !r.ok ? 'invalid' : 'unstamped';
      this.refused({ channel: 'mqtt', reason, actor: r.ok ? (r.value.identity?.id ?? 'unknown') : 'unknown', ...(t ? { eventId: t.eventId } : {}), why: r.ok ? undefined : r.error });
      return { ok: false, reason };
    }
    const identity = r.value.identity;
    const who: Principal = { id: identity.id, role: role.data, ...(identity.district ? { district: identity.district } : {}) };
    const v = r.value;
    return this.acknowledge({
      eventId: t.eventId,
      who,
      channel: 'mqtt',
      topicDistrict: t.district,
      ...(v.operator ? { operator: v.operator } : {}),
      ...(v.note ? { note: v.note } : {}),
      ...(v.warnPublic !== undefined ? { warnPublic: v.warnPublic } : {}),
    });
  }

  /** ISA-18.2 acknowledgement: B -> C, D -> A; only a department of the alarm's district, or an admin. */
  acknowledge(req: AckRequest): AckResult {
    const { store, clock, metrics, logger } = this.d;
    const result = store.transaction((): { r: AckResult; deliveries: PendingDelivery[]; publicChanged?: boolean } => {
      const seen = req.eventId ? store.seen(req.eventId) : undefined;
      const id = req.alarmId ?? seen?.alarmId;
      const a = id ? store.get(id) : undefined;
      if (!a || (req.alarmId && req.eventId && seen?.alarmId !== req.alarmId)) return { r: { ok: false, reason: 'unknown' }, deliveries: [] };
      // Another worker holds its partition: this copy is stale, and the holder applies the acknowledgement.
      if (!this.holding(a.site)) return { r: { ok: false, reason: 'elsewhere', alarm: a }, deliveries: [] };
      const now = clock.now();
      const refuse = (reason: AckRefusal) => {
        store.journal({ alarmId: a.id, at: now, kind: 'ack-refused', from: a.state, to: a.state, actor: req.who.id, channel: req.channel, eventId: req.eventId ?? null, detail: { reason, role: req.who.role } });
        return { r: { ok: false as const, reason, alarm: a }, deliveries: [] };
      };
      if (!may(req.who, 'alarms.ack', a.district)) return refuse('forbidden');
      if (req.topicDistrict !== undefined && a.district !== null && req.topicDistrict !== a.district) return refuse('wrong-district');
      if (req.eventId && seen && seen.activation !== a.activation) return refuse('stale');
      if (a.state === 'active-acknowledged') {
        // Acknowledged before: the department may still say (again, or otherwise) whether to warn the public.
        const publicChanged = this.recordPublicWarning(a, req, now);
        if (publicChanged) store.put(a);
        return { r: { ok: true, alarm: a, already: true }, deliveries: [], publicChanged };
      }
      const t = awaitsAck(a.state) ? transition(a.state, 'ack') : undefined;
      if (!t) return refuse('not-active');
      const from = a.state;
      a.state = t.to;
      a.since = now;
      a.updatedAt = now;
      a.ack = { by: req.who.id, role: req.who.role, at: now, channel: req.channel, ...(req.operator ? { operator: req.operator } : {}), ...(req.note ? { note: req.note } : {}) };
      a.escalationDue = null;
      store.journal({ alarmId: a.id, at: now, kind: 'transition', from, to: t.to, actor: req.who.id, channel: req.channel, eventId: req.eventId ?? a.activatingEvent, detail: { ...(req.operator ? { operator: req.operator } : {}), ...(req.note ? { note: req.note } : {}), role: req.who.role } });
      this.recordPublicWarning(a, req, now);
      // The acknowledgement goes back to the site: its gateway is told on its command topic.
      const command: AlarmAckCommand = {
        v: 1,
        alarmId: a.id,
        eventId: a.activatingEvent ?? a.lastEvent.eventId,
        site: a.site,
        device: a.lastEvent.device,
        condition: a.lastEvent.condition,
        acknowledgedBy: req.who.id,
        ...(req.operator ? { operator: req.operator } : {}),
        channel: req.channel,
        at: now,
      };
      const p: PendingDelivery = {
        key: `cmd:${a.id}.${a.activation}.ack.${now}`,
        channel: 'mqtt',
        department: `gateway ${a.site}/${a.lastEvent.gateway}`,
        message: { topic: topics.gatewayCommand(a.site, a.lastEvent.gateway, ALARM_ACK_COMMAND), payload: command },
      };
      this.d.log.addPending(p);
      store.put(a);
      return { r: { ok: true, alarm: a, already: false }, deliveries: [p] };
    });
    const r = result.r;
    if (!r.ok && ((r.reason === 'unknown' && req.channel === 'mqtt' && this.d.othersHaveAlarms) || r.reason === 'elsewhere')) {
      logger.debug({ eventId: req.eventId, alarmId: req.alarmId, by: req.who.id }, "acknowledgement of another cloud-sync worker's alarm");
      return r;
    }
    if (!r.ok) {
      this.refused({ channel: req.channel, reason: r.reason, actor: req.who.id, ...(req.eventId ? { eventId: req.eventId } : {}), ...(r.alarm ? { alarmId: r.alarm.id } : {}) });
      return r;
    }
    if (r.already && result.publicChanged) {
      logger.info({ alarmId: r.alarm.id, by: req.who.id, warnPublic: req.warnPublic, channel: req.channel }, req.warnPublic ? 'fire department asks to warn the public' : 'fire department ends the public warning');
      this.notify(r.alarm);
      this.notify(r.alarm, this.changeObservers);
    }
    if (!r.already) {
      this.d.scheduler.cancel(escalationKey(r.alarm.id));
      metrics.inc('cosafe_alarm_acks_total', { channel: req.channel });
      metrics.inc('cosafe_alarm_transitions_total', { class: r.alarm.class, to: r.alarm.state });
      const activeSince = r.alarm.dispatchedAt ?? r.alarm.since;
      metrics.observe('cosafe_alarm_ack_latency_seconds', { class: r.alarm.class }, Math.max(0, clock.now() - activeSince) / 1000);
      logger.info({ alarmId: r.alarm.id, site: r.alarm.site, device: r.alarm.lastEvent.device, by: req.who.id, operator: req.operator, channel: req.channel }, 'alarm acknowledged');
      this.afterCommit(r.alarm, result.deliveries);
    }
    return r;
  }

  /** ISA-18.2 shelving: time-limited, with a reason, and only for supervisory and trouble signals. */
  shelve(alarmId: string, who: Principal, minutes: number, reason: string): ShelveResult {
    const { store, clock } = this.d;
    const a = store.get(alarmId);
    if (!a) return { ok: false, reason: 'unknown', message: `no alarm ${alarmId}` };
    if (!may(who, 'alarms.shelve', a.district)) return { ok: false, reason: 'forbidden', message: 'this credential may not shelve alarms' };
    if (!mayShelve(a.class)) return { ok: false, reason: 'not-shelvable', message: `a ${a.class} alarm is never shelved (ISA-18.2 shelving is for supervisory and trouble signals)` };
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > this.d.config.maxShelveMinutes || !reason.trim()) {
      return { ok: false, reason: 'invalid', message: `give minutes (1 to ${this.d.config.maxShelveMinutes}) and a reason` };
    }
    const now = clock.now();
    const until = now + minutes * 60_000;
    store.transaction(() => {
      a.shelved = { until, reason: reason.trim().slice(0, 200), by: who.id };
      a.escalationDue = null;
      a.updatedAt = now;
      store.journal({ alarmId, at: now, kind: 'shelved', from: a.state, to: a.state, actor: who.id, channel: 'http', eventId: null, detail: { until, reason: a.shelved.reason } });
      store.put(a);
    });
    this.d.metrics.inc('cosafe_alarm_shelved_total');
    this.d.scheduler.cancel(escalationKey(alarmId));
    this.d.scheduler.schedule(unshelveKey(alarmId), until, () => this.unshelveExpired(alarmId));
    this.notify(a, this.changeObservers);
    return { ok: true, alarm: a };
  }

  unshelve(alarmId: string, who: Principal, why = 'by request'): ShelveResult {
    const { store, clock } = this.d;
    const a = store.get(alarmId);
    if (!a || !a.shelved) return { ok: false, reason: 'unknown', message: `no shelved alarm ${alarmId}` };
    if (!may(who, 'alarms.shelve', a.district)) return { ok: false, reason: 'forbidden', message: 'this credential may not unshelve alarms' };
    const now = clock.now();
    const deliveries = store.transaction(() => {
      a.shelved = null;
      a.updatedAt = now;
      store.journal({ alarmId, at: now, kind: 'unshelved', from: a.state, to: a.state, actor: who.id, channel: who.id === 'hub' ? 'hub' : 'http', eventId: null, detail: { why } });
      // What was suppressed while shelved is sent now.
      const out = a.state === 'active-unacknowledged' && a.alertId === null ? this.dispatch(a, 'Alert', a.lastEvent, now) : [];
      store.put(a);
      return out;
    });
    this.d.scheduler.cancel(unshelveKey(alarmId));
    this.afterCommit(a, deliveries);
    return { ok: true, alarm: a };
  }

  /** A department's channel took a message (2xx, PUBACK): transport delivery, journaled apart from acknowledgement. */
  onDelivered(p: PendingDelivery, at: number, attempts = 1): void {
    if (p.key.startsWith('cmd:')) return;
    const messageId = p.key.slice(p.key.indexOf('/') + 1);
    const { store } = this.d;
    const m = store.message(messageId);
    if (!m) return;
    let rearm: AlarmRecord | undefined;
    let delivered: AlarmRecord | undefined;
    try {
      store.transaction(() => {
        const a = store.get(m.alarmId);
        if (!a) return;
        delivered = a;
        store.journal({ alarmId: a.id, at, kind: 'delivered', from: null, to: null, actor: p.department, channel: p.channel, eventId: null, detail: { messageId, msgType: m.msgType, attempts } });
        if (a.firstDeliveredAt === null && m.activation === a.activation && m.msgType === 'Alert') {
          a.firstDeliveredAt = at;
          // The department's time to acknowledge runs from the first delivery.
          if (a.state === 'active-unacknowledged' && a.escalationStep === 0 && a.escalationDue !== null) {
            a.escalationDue = at + this.d.departments.waitBefore(a.district, 1);
            rearm = a;
          }
          store.put(a);
        }
      });
    } catch (err) {
      this.d.logger.warn({ err: (err as Error).message, key: p.key }, 'could not journal a delivery');
    }
    if (rearm) this.arm(rearm);
    // A console shows each delivery in the alarm's timeline as it happens.
    if (delivered) this.notify(delivered, this.deliveryObservers);
    if (delivered) this.notify(delivered, this.changeObservers);
  }

  get(id: string): AlarmRecord | undefined {
    return this.d.store.get(id);
  }

  list(filter: { state?: AlarmLifecycleState; district?: string; includeNormal?: boolean } = {}): AlarmRecord[] {
    return this.d.store.list(filter);
  }

  journal(id: string): JournalEntry[] {
    return this.d.store.journalOf(id);
  }

  /** The journal of a site's alarms since `since`: their occurrences for an owner's history. */
  siteJournal(site: string, since: number): JournalEntry[] {
    return this.d.store.siteJournal(site, since);
  }

  /** Transitions journaled since `since`, oldest first (the agencies' statistics). */
  transitionsSince(since: number): TransitionRow[] {
    return this.d.store.transitionsSince(since);
  }

  messages(id: string): StoredMessage[] {
    return this.d.store.messages(id);
  }

  /** Escalation: the alarm is still unacknowledged at its due time. */
  private escalate(id: string): void {
    const { store, clock, logger, metrics, departments } = this.d;
    let out: { a: AlarmRecord; deliveries: PendingDelivery[]; step: number; due: number } | undefined;
    try {
      out = store.transaction(() => {
        const a = store.get(id);
        if (!a || a.state !== 'active-unacknowledged' || a.shelved || a.escalationDue === null || a.alertId === null) return undefined;
        // Its partition went to another worker meanwhile: the holder escalates it, from the shared copy.
        if (!this.holding(a.site)) return undefined;
        const now = clock.now();
        if (now < a.escalationDue) return { a, deliveries: [], step: a.escalationStep, due: a.escalationDue };
        const due = a.escalationDue;
        const step = a.escalationStep + 1;
        const added = departments.stepTargets(a.district, step).filter((t) => !a.notified.includes(t));
        a.notified = [...a.notified, ...added];
        a.escalationStep = step;
        const waited = Math.round((now - (a.firstDeliveredAt ?? a.dispatchedAt ?? now)) / 1000);
        const deliveries = this.dispatch(a, 'Update', a.lastEvent, now, `escalation step ${step}: not acknowledged ${waited} s after it was first delivered`);
        store.journal({ alarmId: id, at: now, kind: 'escalated', from: a.state, to: a.state, actor: 'hub', channel: 'hub', eventId: a.activatingEvent, detail: { step, dueAt: due, notified: a.notified, added } });
        a.escalationDue = now + departments.waitBefore(a.district, step + 1);
        a.updatedAt = now;
        store.put(a);
        return { a, deliveries, step, due };
      });
    } catch (err) {
      // The due time is still stored: try again in a second.
      logger.error({ code: 'COSAFE_ERR_ALARM_STORE', err: (err as Error).message, alarmId: id }, 'could not journal an escalation; retrying');
      this.d.scheduler.schedule(escalationKey(id), clock.now() + 1000, () => this.escalate(id));
      return;
    }
    if (!out) return;
    if (out.deliveries.length) {
      metrics.inc('cosafe_alarm_escalations_total', { district: out.a.district ?? 'unregistered', step: String(Math.min(out.step, 9)) });
      logger.warn(
        { code: 'COSAFE_ERR_ESCALATION', alarmId: id, site: out.a.site, district: out.a.district, step: out.step, notified: out.a.notified },
        'alarm not acknowledged in time: escalated',
      );
    }
    this.afterCommit(out.a, out.deliveries);
  }

  /**
   * Within a transaction: makes the CAP message of `msgType`, records it, and
   * records its deliveries (Alert: the district's departments; Update and
   * Cancel: everyone told of this occurrence so far).
   */
  private dispatch(a: AlarmRecord, msgType: CapMsgType, event: AlarmEvent, now: number, note?: string): PendingDelivery[] {
    const { departments, store, config, logger, metrics } = this.d;
    if (msgType !== 'Cancel' && a.shelved) return [];
    if (msgType === 'Alert') {
      const routing = departments.route(a.district, a.class);
      a.notified = routing.departments.map((d) => d.id);
      if (routing.fallback) {
        const code = routing.fallback === 'unregistered' ? 'COSAFE_ERR_SITE_UNREGISTERED' : 'COSAFE_ERR_DISTRICT_UNATTENDED';
        metrics.inc('cosafe_alarm_fallback_routes_total', { reason: routing.fallback });
        store.journal({ alarmId: a.id, at: now, kind: 'routed', from: null, to: null, actor: 'hub', channel: 'hub', eventId: event.eventId, detail: { fallback: routing.fallback, notified: a.notified } });
        logger.error({ code, site: a.site, district: a.district, alarmId: a.id, notified: a.notified }, routing.fallback === 'unregistered' ? 'alarm of a site that is not registered: sent to every fire department' : "no fire department serves the alarm's district: sent to every fire department");
      }
      if (a.notified.length === 0) logger.error({ code: 'COSAFE_ERR_DISTRICT_UNATTENDED', alarmId: a.id, class: a.class }, 'no fire department takes this class of alarm: it is journaled and sent to nobody');
      a.alertId = event.eventId;
      a.alertSent = now;
      a.dispatchedAt = now;
      a.escalationStep = 0;
      a.escalationDue = departments.escalates(a.class) ? now + departments.waitBefore(a.district, 1) : null;
    } else if (a.alertId === null) {
      return [];
    }
    if (msgType === 'Update' && !note) {
      // A new activation of an acknowledged alarm: its time to acknowledge starts again.
      a.escalationStep = 0;
      a.escalationDue = departments.escalates(a.class) ? now + departments.waitBefore(a.district, 1) : null;
    }
    const messageId = msgType === 'Update' && note ? `${a.alertId}.u${(a.updates = (a.updates ?? 0) + 1)}` : event.eventId;
    const site = this.d.sites(a.site);
    const references: CapReference[] = msgType === 'Alert' ? [] : [{ sender: config.cap.sender, identifier: a.alertId!, sent: a.alertSent! }];
    const xml = buildCapAlert({
      identifier: messageId,
      sender: config.cap.sender,
      sent: now,
      status: config.cap.status,
      msgType,
      references,
      incident: `${a.id}.${a.activation}`,
      alarmId: a.id,
      ...(a.district ? { district: a.district } : {}),
      event,
      ...(site ? { site } : {}),
      ...(note ? { note } : msgType === 'Cancel' ? { note: 'the condition returned to normal' } : msgType === 'Update' ? { note: 'activated again after it was acknowledged: acknowledge again' } : {}),
    });
    store.addMessage({ id: messageId, alarmId: a.id, activation: a.activation, msgType, escalation: a.escalationStep, sent: now, xml });
    const message: DispatchMessage = {
      ...event,
      alarmId: a.id,
      messageId,
      msgType,
      ...(a.district ? { district: a.district } : {}),
      alarmState: a.state,
      escalation: a.escalationStep,
      cap: xml,
    };
    const deliveries = departments.deliveries(a.notified, message).filter((p) => !this.d.log.has(p.key));
    for (const p of deliveries) this.d.log.addPending(p);
    return deliveries;
  }

  private afterCommit(a: AlarmRecord, deliveries: PendingDelivery[]): void {
    for (const p of deliveries) this.d.deliver(p);
    this.arm(a);
    this.updateGauges();
    this.notify(a);
    this.notify(a, this.changeObservers);
  }

  private notify(a: AlarmRecord, observers: ReadonlySet<AlarmObserver> = this.observers): void {
    for (const observe of observers) {
      try {
        observe(a);
      } catch (err) {
        this.d.logger.error({ err: (err as Error).message, alarmId: a.id }, 'an alarm observer failed');
      }
    }
  }

  /**
   * Within a transaction: journals a department's word on the public (the
   * acknowledgement's warnPublic), if it says something new. True if it did.
   */
  private recordPublicWarning(a: AlarmRecord, req: AckRequest, now: number): boolean {
    if (req.warnPublic === undefined || a.publicWarning?.warn === req.warnPublic) return false;
    a.publicWarning = { warn: req.warnPublic, by: req.who.id, at: now, channel: req.channel };
    a.updatedAt = now;
    this.d.store.journal({
      alarmId: a.id,
      at: now,
      kind: 'public-warning',
      from: a.state,
      to: a.state,
      actor: req.who.id,
      channel: req.channel,
      eventId: req.eventId ?? a.activatingEvent,
      detail: { warn: req.warnPublic, role: req.who.role, ...(req.operator ? { operator: req.operator } : {}) },
    });
    return true;
  }

  private arm(a: AlarmRecord): void {
    if (a.escalationDue !== null && this.holding(a.site)) this.d.scheduler.schedule(escalationKey(a.id), a.escalationDue, () => this.escalate(a.id));
    else this.d.scheduler.cancel(escalationKey(a.id));
  }

  private holding(site: string): boolean {
    return this.d.holds?.(site) ?? true;
  }

  private unshelveExpired(id: string): void {
    const a = this.d.store.get(id);
    if (a && this.holding(a.site)) this.unshelve(id, { id: 'hub', role: 'admin' }, 'expired');
  }

  /** With partitions, on taking a partition: arms the escalation and unshelving of its alarms, at their stored due times (overdue: now). */
  armWhere(inPartition: (site: string) => boolean): void {
    for (const a of this.d.store.timed()) {
      if (!inPartition(a.site)) continue;
      this.arm(a);
      if (a.shelved && this.holding(a.site)) this.d.scheduler.schedule(unshelveKey(a.id), a.shelved.until, () => this.unshelveExpired(a.id));
    }
  }

  /** With partitions, on giving a partition up: its alarms' timers stop here (the next holder arms them from the shared copy). */
  disarmWhere(inPartition: (site: string) => boolean): void {
    for (const a of this.d.store.timed()) {
      if (!inPartition(a.site)) continue;
      this.d.scheduler.cancel(escalationKey(a.id));
      this.d.scheduler.cancel(unshelveKey(a.id));
    }
  }

  /** Everything a successor needs to go on with an alarm (alarm-copy.ts), read in one transaction; the version is the caller's. */
  copyOf(id: string): Omit<AlarmCopy, 'v' | 'version' | 'worker'> | undefined {
    const { store } = this.d;
    return store.transaction(() => {
      const a = store.get(id);
      if (!a) return undefined;
      return { alarm: a, events: store.eventsOf(id, a.activation), messages: copyMessages(store.messages(id), a), pending: this.d.log.pendingOf(id), journal: store.journalTail(id, COPY_JOURNAL) };
    });
  }

  /**
   * Takes an alarm over from another worker's shared copy (this worker has
   * just claimed its partition): record, events, messages and journal
   * imported with a journal entry saying from whom, in one transaction; the
   * deliveries the copy had not seen confirmed are sent again (the same key:
   * the same webhook-id, so a department drops a duplicate), and the
   * escalation is armed at the stored due time (overdue: now).
   */
  adopt(copy: AlarmCopy, me: string): void {
    const { store, clock, log } = this.d;
    const a = copy.alarm;
    const deliveries = store.transaction(() => {
      const before = store.get(a.id);
      store.importJournal(a.id, copy.journal);
      for (const m of copy.messages) store.addMessage(m);
      for (const e of copy.events) store.markSeen(e, a.id, a.activation);
      store.put(a);
      store.journal({
        alarmId: a.id,
        at: clock.now(),
        kind: 'taken-over',
        from: before?.state ?? null,
        to: a.state,
        actor: me,
        channel: 'hub',
        eventId: a.activatingEvent,
        detail: { from: copy.worker, version: copy.version, resent: copy.pending.length },
      });
      const out = copy.pending.filter((p) => !log.has(p.key));
      for (const p of out) log.addPending(p);
      return out;
    });
    for (const p of deliveries) this.d.deliver(p);
    this.arm(a);
    this.updateGauges();
    this.notify(a);
  }

  /**
   * An MQTT acknowledgement no worker held the alarm's partition for when it
   * came (a takeover in progress), kept in Redis and offered again to the
   * worker that took the partition: applied only if it is of an alarm of
   * `inPartition` that still waits for it, in the occurrence it names (never
   * refused a second time).
   */
  replayAck(topic: string, payload: Buffer, inPartition: (site: string) => boolean): boolean {
    const t = parseAckTopic(topic);
    if (!t) return false;
    const seen = this.d.store.seen(t.eventId);
    const a = seen && this.d.store.get(seen.alarmId);
    if (!a || !seen || !inPartition(a.site) || !awaitsAck(a.state) || seen.activation !== a.activation) return false;
    return this.ackFromMqtt(topic, payload).ok;
  }

  private fresh(id: string, e: AlarmEvent, now: number): AlarmRecord {
    return {
      id,
      site: e.site,
      device: e.device,
      condition: e.condition,
      class: e.class,
      district: null,
      state: 'normal',
      activation: 0,
      activatingEvent: null,
      lastEvent: e,
      since: now,
      alertId: null,
      alertSent: null,
      ack: null,
      shelved: null,
      escalationStep: 0,
      escalationDue: null,
      dispatchedAt: null,
      firstDeliveredAt: null,
      notified: [],
      updatedAt: now,
    };
  }

  private refused(r: { channel: AckChannel; reason: AckRefusal; actor: string; eventId?: string; alarmId?: string; why?: string | undefined }): void {
    this.d.metrics.inc('cosafe_alarm_acks_refused_total', { channel: r.channel, reason: r.reason });
    this.d.logger.warn({ code: 'COSAFE_ERR_ACK_REFUSED', ...r }, 'acknowledgement refused');
  }

  /**
   * A site that sends to the hub but is not in the registry is raised as
   * trouble (an alarm of the hub's own, journaled and listed like any other,
   * routed as the site's alarms are: to every department that takes trouble),
   * and the trouble clears once the site is registered. Its fire alarms are
   * still dispatched, to every department, loudly (never routed nowhere).
   */
  checkSite(site: string, gateway: string): void {
    const trouble = this.d.store.get(alarmIdOf(site, HUB_DEVICE, SITE_UNREGISTERED));
    const troubleActive = trouble?.state === 'active-unacknowledged' || trouble?.state === 'active-acknowledged';
    if (this.d.sites(site)) {
      this.unregistered.delete(site);
      if (troubleActive) this.raiseSiteTrouble(site, gateway, 'cleared', 'the site is registered now');
      return;
    }
    if (this.unregistered.has(site)) return;
    this.unregistered.add(site);
    this.d.metrics.inc('cosafe_site_problems_total', { problem: 'unregistered' });
    this.d.logger.error({ code: 'COSAFE_ERR_SITE_UNREGISTERED', site, gateway }, `site "${site}" is not in the registry: register it with "cosafe sites add"`);
    if (!troubleActive) {
      this.raiseSiteTrouble(site, gateway, 'active', `site "${site}" is not in the hub's registry: its alarms go to every fire department; register it with "cosafe sites add"`);
    }
  }

  private raiseSiteTrouble(site: string, gateway: string, state: AlarmEvent['state'], text: string): void {
    const time = this.d.clock.now();
    const digest = createHash('sha256').update(`${site}\u0000${HUB_DEVICE}\u0000${SITE_UNREGISTERED}\u0000${state}\u0000${time}`).digest('hex');
    const event: AlarmEvent = { v: 1, eventId: `evt_${digest.slice(0, 32)}`, gateway, site, device: HUB_DEVICE, profile: HUB_DEVICE, condition: SITE_UNREGISTERED, class: 'trouble', state, time, text };
    // Through the one path of every event, so it is journaled, routed and listed like one.
    if (!this.onEvent(event)) this.d.logger.error({ code: 'COSAFE_ERR_ALARM_STORE', site }, 'could not record the trouble of an unregistered site');
  }

  private updateGauges(): void {
    const counts = this.d.store.countByState();
    for (const s of ['active-unacknowledged', 'active-acknowledged', 'returned-unacknowledged'] as const) this.d.metrics.set('cosafe_alarms', { state: s }, counts.get(s) ?? 0);
  }
}

/**
 * A "cleared" older (by the device's time) than the activation the alarm last
 * saw: it arrived after that activation, out of order (a resend after an
 * outage, another broker's queue). Applying it would end an alarm whose
 * condition came back after it. An activation is always applied, whatever its
 * time: a device clock set back must never cost an alarm; at worst an alarm
 * stays active until a clear newer than it comes.
 */
function isLateClear(event: AlarmEvent, last: AlarmEvent): boolean {
  return event.state === 'cleared' && last.state === 'active' && event.time < last.time;
}
