import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { transactionRunner } from '../../core/sqlite.js';
import type { AlarmEvent, AlarmLifecycleState, CapMsgType } from '../../broker/contract/index.js';

/** The hub's alarm: one per site, device and condition (ISA-18.2: an alarm is a point, its activations come and go). */
export interface AlarmRecord {
  id: string;
  site: string;
  device: string;
  condition: string;
  class: AlarmEvent['class'];
  /** From the registry at the last activation; null when the site was not registered. */
  district: string | null;
  state: AlarmLifecycleState;
  /** How many times it became active from normal (or returned to normal): the occurrence number. */
  activation: number;
  /** The event that raised the current occurrence; an acknowledgement names it (or any later event of it). */
  activatingEvent: string | null;
  lastEvent: AlarmEvent;
  since: number;
  /** The CAP Alert of the current occurrence: what Updates and the Cancel reference. */
  alertId: string | null;
  alertSent: number | null;
  ack: { by: string; role: string; at: number; channel: string; operator?: string; note?: string } | null;
  shelved: { until: number; reason: string; by: string } | null;
  escalationStep: number;
  escalationDue: number | null;
  dispatchedAt: number | null;
  firstDeliveredAt: number | null;
  /** Departments told of the current occurrence (primary and escalated), by id. */
  notified: string[];
  /**
   * A fire department's word on warning the public about this occurrence (the
   * acknowledgement's `warnPublic`): true to warn, false to end a warning.
   */
  publicWarning?: { warn: boolean; by: string; at: number; channel: string } | null;
  /** Escalation Updates sent for the current occurrence (their CAP identifiers count up). */
  updates?: number;
  updatedAt: number;
}

export type JournalKind = 'transition' | 'repeat' | 'late' | 'delivered' | 'escalated' | 'ack-refused' | 'shelved' | 'unshelved' | 'routed' | 'ignored' | 'public-warning' | 'taken-over';

export interface JournalEntry {
  n: number;
  alarmId: string;
  at: number;
  kind: JournalKind;
  from: AlarmLifecycleState | null;
  to: AlarmLifecycleState | null;
  /** Who: the gateway that sent the event, the credential that acknowledged, "hub" for timers. */
  actor: string;
  /** Through what: mqtt-event, http, mqtt, webhook, hub. */
  channel: string;
  eventId: string | null;
  detail: Record<string, unknown>;
}

export interface StoredMessage {
  id: string;
  alarmId: string;
  activation: number;
  msgType: CapMsgType;
  escalation: number;
  sent: number;
  xml: string;
}

/** A stable alarm id from what the alarm is about. */
export function alarmIdOf(site: string, device: string, condition: string): string {
  return `alm_${createHash('sha256').update(`${site}\u0000${device}\u0000${condition}`).digest('hex').slice(0, 24)}`;
}

interface Row {
  id: string;
  record: string;
}

/** One journaled transition, as `transitionsSince` reads it. */
export interface TransitionRow {
  alarmId: string;
  at: number;
  from: AlarmLifecycleState | null;
  to: AlarmLifecycleState | null;
  channel: string;
  district: string | null;
  class: AlarmEvent['class'];
  site: string;
  device: string;
  condition: string;
  /** 1 when the transition was caused by an event the edge marked as a test. */
  test: number;
}

/**
 * Alarms, their journal, the CAP messages sent, and the event ids already
 * applied, in the dispatch database (SQLite, WAL), next to the delivery log so
 * that a transition and the deliveries it causes commit in one transaction.
 * The journal is append-only: every transition, delivery, escalation and
 * refused acknowledgement, with who, when and through which channel.
 */
export class AlarmStore {
  private readonly s: ReturnType<AlarmStore['prepare']>;

  constructor(private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS alarm (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, district TEXT, state TEXT NOT NULL,
        escalation_due INTEGER, shelved_until INTEGER, updated_at INTEGER NOT NULL, record TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS alarm_state ON alarm (state);
      CREATE TABLE IF NOT EXISTS journal (
        n INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL,
        from_state TEXT, to_state TEXT, actor TEXT NOT NULL, channel TEXT NOT NULL, event_id TEXT, detail TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS journal_alarm ON journal (alarm_id, n);
      CREATE INDEX IF NOT EXISTS journal_at ON journal (at);
      CREATE TABLE IF NOT EXISTS event_seen (event_id TEXT PRIMARY KEY, alarm_id TEXT NOT NULL, activation INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS message (
        id TEXT PRIMARY KEY, alarm_id TEXT NOT NULL, activation INTEGER NOT NULL, msg_type TEXT NOT NULL,
        escalation INTEGER NOT NULL, sent INTEGER NOT NULL, xml TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS message_alarm ON message (alarm_id, sent);
      -- With cloudSync.partitions: the version of each alarm's state as this worker last wrote or imported its shared copy (alarm-copy.ts).
      CREATE TABLE IF NOT EXISTS alarm_copy (alarm_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, seq INTEGER NOT NULL, written INTEGER NOT NULL) WITHOUT ROWID;
    `);
    this.s = this.prepare(db);
  }

  private run: (<T>(fn: () => T) => T) | undefined;

  transaction<T>(f: () => T): T {
    this.run ??= transactionRunner(this.db);
    return this.run(f);
  }

  get(id: string): AlarmRecord | undefined {
    const row = this.s.get.get(id) as Row | undefined;
    return row && (JSON.parse(row.record) as AlarmRecord);
  }

  put(a: AlarmRecord): void {
    this.s.put.run(a.id, a.site, a.district, a.state, a.escalationDue, a.shelved?.until ?? null, a.updatedAt, JSON.stringify(a));
  }

  /** Alarms that are not normal, and the normal ones changed since `since` (for the API's lists). */
  list(filter: { state?: AlarmLifecycleState; district?: string; includeNormal?: boolean } = {}): AlarmRecord[] {
    const rows = this.s.list.all() as Row[];
    return rows
      .map((r) => JSON.parse(r.record) as AlarmRecord)
      .filter((a) => (filter.state ? a.state === filter.state : filter.includeNormal || a.state !== 'normal') && (!filter.district || a.district === filter.district));
  }

  /** Alarms with an escalation or an unshelving due, for the scheduler after a restart. */
  timed(): AlarmRecord[] {
    return (this.s.timed.all() as Row[]).map((r) => JSON.parse(r.record) as AlarmRecord);
  }

  countByState(): Map<AlarmLifecycleState, number> {
    return new Map((this.s.countByState.all() as { state: AlarmLifecycleState; n: number }[]).map((r) => [r.state, r.n]));
  }

  journal(entry: Omit<JournalEntry, 'n'>): void {
    this.s.journal.run(entry.alarmId, entry.at, entry.kind, entry.from, entry.to, entry.actor, entry.channel, entry.eventId, JSON.stringify(entry.detail));
  }

  journalOf(alarmId: string): JournalEntry[] {
    return (this.s.journalOf.all(alarmId) as Record<string, unknown>[]).map(toEntry);
  }

  /**
   * The journal of one site's alarms since `since` (ms), in journal order: its
   * transitions, deliveries and escalations (what an owner's history and a
   * console's timeline are read from).
   */
  siteJournal(site: string, since: number): JournalEntry[] {
    return (this.s.siteJournal.all(site, since) as Record<string, unknown>[]).map(toEntry);
  }

  /**
   * State transitions journaled since `since` (ms), oldest first, with the
   * alarm's district, class and condition: what the agencies' statistics count.
   */
  transitionsSince(since: number): TransitionRow[] {
    return this.s.transitionsSince.all(since) as TransitionRow[];
  }

  /** The alarm and occurrence an event id was applied to, if it was. */
  seen(eventId: string): { alarmId: string; activation: number } | undefined {
    const r = this.s.seen.get(eventId) as { alarm_id: string; activation: number } | undefined;
    return r && { alarmId: r.alarm_id, activation: r.activation };
  }

  markSeen(eventId: string, alarmId: string, activation: number): void {
    this.s.markSeen.run(eventId, alarmId, activation);
  }

  /** The event ids applied to one occurrence of an alarm. */
  eventsOf(alarmId: string, activation: number): string[] {
    return (this.s.eventsOf.all(alarmId, activation) as { event_id: string }[]).map((r) => r.event_id);
  }

  /** The last `n` journal entries of an alarm, oldest first. */
  journalTail(alarmId: string, n: number): JournalEntry[] {
    return (this.s.journalTail.all(alarmId, n) as Record<string, unknown>[]).map(toEntry).reverse();
  }

  /**
   * Journal entries another worker wrote (a takeover), those this store does
   * not have yet: an entry imported before (a partition that comes back) is
   * recognised by its time, kind, actor, channel and event, not by its number,
   * which is each worker's own.
   */
  importJournal(alarmId: string, entries: readonly JournalEntry[]): number {
    let n = 0;
    for (const e of entries) {
      if (this.s.hasEntry.get(alarmId, e.at, e.kind, e.actor, e.channel, e.eventId, e.eventId)) continue;
      this.journal({ ...e, alarmId });
      n++;
    }
    return n;
  }

  copyState(alarmId: string): { epoch: number; seq: number; written: boolean } | undefined {
    const r = this.s.copyState.get(alarmId) as { epoch: number; seq: number; written: number } | undefined;
    return r && { epoch: r.epoch, seq: r.seq, written: r.written === 1 };
  }

  setCopyState(alarmId: string, v: { epoch: number; seq: number }, written: boolean): void {
    this.s.setCopyState.run(alarmId, v.epoch, v.seq, written ? 1 : 0);
  }

  /** Marks a version written, unless a later change gave the alarm a newer one meanwhile. */
  copyWritten(alarmId: string, v: { epoch: number; seq: number }): void {
    this.s.copyWritten.run(alarmId, v.epoch, v.seq);
  }

  addMessage(m: StoredMessage): void {
    this.s.addMessage.run(m.id, m.alarmId, m.activation, m.msgType, m.escalation, m.sent, m.xml);
  }

  messages(alarmId: string): StoredMessage[] {
    return (this.s.messages.all(alarmId) as Record<string, unknown>[]).map(toMessage);
  }

  /**
   * One message by its id, read alone: once for every delivery of every
   * message, and an alarm that comes back again and again (a detector that
   * flaps) has hundreds, each with its CAP XML.
   */
  message(id: string): StoredMessage | undefined {
    const r = this.s.message.get(id) as Record<string, unknown> | undefined;
    return r && toMessage(r);
  }

  private prepare(db: Database.Database) {
    return {
      get: db.prepare('SELECT id, record FROM alarm WHERE id = ?'),
      put: db.prepare('INSERT OR REPLACE INTO alarm (id, site, district, state, escalation_due, shelved_until, updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      list: db.prepare('SELECT id, record FROM alarm ORDER BY updated_at DESC'),
      timed: db.prepare('SELECT id, record FROM alarm WHERE escalation_due IS NOT NULL OR shelved_until IS NOT NULL'),
      countByState: db.prepare('SELECT state, count(*) AS n FROM alarm GROUP BY state'),
      journal: db.prepare('INSERT INTO journal (alarm_id, at, kind, from_state, to_state, actor, channel, event_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      journalOf: db.prepare('SELECT * FROM journal WHERE alarm_id = ? ORDER BY n'),
      siteJournal: db.prepare(
        `SELECT j.* FROM journal j JOIN alarm a ON a.id = j.alarm_id
          WHERE a.site = ? AND j.at >= ? AND j.kind IN ('transition', 'delivered', 'escalated', 'routed') ORDER BY j.n`,
      ),
      seen: db.prepare('SELECT alarm_id, activation FROM event_seen WHERE event_id = ?'),
      transitionsSince: db.prepare(
        `SELECT j.alarm_id AS alarmId, j.at, j.from_state AS "from", j.to_state AS "to", j.channel, a.district,
                json_extract(a.record, '$.class') AS class, a.site, json_extract(a.record, '$.device') AS device, json_extract(a.record, '$.condition') AS condition,
                json_extract(j.detail, '$.test') IS NOT NULL AS test
           FROM journal j JOIN alarm a ON a.id = j.alarm_id
          WHERE j.kind = 'transition' AND j.at >= ? ORDER BY j.n`,
      ),
      markSeen: db.prepare('INSERT OR IGNORE INTO event_seen (event_id, alarm_id, activation) VALUES (?, ?, ?)'),
      addMessage: db.prepare('INSERT OR IGNORE INTO message (id, alarm_id, activation, msg_type, escalation, sent, xml) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      messages: db.prepare('SELECT * FROM message WHERE alarm_id = ? ORDER BY sent, rowid'),
      message: db.prepare('SELECT * FROM message WHERE id = ?'),
      eventsOf: db.prepare('SELECT event_id FROM event_seen WHERE alarm_id = ? AND activation = ?'),
      journalTail: db.prepare('SELECT * FROM journal WHERE alarm_id = ? ORDER BY n DESC LIMIT ?'),
      hasEntry: db.prepare('SELECT 1 FROM journal WHERE alarm_id = ? AND at = ? AND kind = ? AND actor = ? AND channel = ? AND (event_id = ? OR (event_id IS NULL AND ? IS NULL))'),
      copyState: db.prepare('SELECT epoch, seq, written FROM alarm_copy WHERE alarm_id = ?'),
      setCopyState: db.prepare('INSERT OR REPLACE INTO alarm_copy (alarm_id, epoch, seq, written) VALUES (?, ?, ?, ?)'),
      copyWritten: db.prepare('UPDATE alarm_copy SET written = 1 WHERE alarm_id = ? AND epoch = ? AND seq = ?'),
    };
  }
}

function toEntry(r: Record<string, unknown>): JournalEntry {
  return {
    n: r.n as number,
    alarmId: r.alarm_id as string,
    at: r.at as number,
    kind: r.kind as JournalKind,
    from: (r.from_state as AlarmLifecycleState | null) ?? null,
    to: (r.to_state as AlarmLifecycleState | null) ?? null,
    actor: r.actor as string,
    channel: r.channel as string,
    eventId: (r.event_id as string | null) ?? null,
    detail: JSON.parse(r.detail as string) as Record<string, unknown>,
  };
}

function toMessage(r: Record<string, unknown>): StoredMessage {
  return {
    id: r.id as string,
    alarmId: r.alarm_id as string,
    activation: r.activation as number,
    msgType: r.msg_type as CapMsgType,
    escalation: r.escalation as number,
    sent: r.sent as number,
    xml: r.xml as string,
  };
}
