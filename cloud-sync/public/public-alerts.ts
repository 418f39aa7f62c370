import { randomBytes } from 'node:crypto';
import { PublicAlert, PublicCellAlerts, topics, type CapMsgType, type PublicHazard } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { PublicConfig } from '../../core/public-config.js';
import { openDurableDatabase } from '../../core/sqlite.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import type { CapStatus } from '../alarms/cap.js';
import { TimerScheduler, type Scheduler } from '../alarms/scheduler.js';
import type { Site } from '../registry/site.js';
import { areaConcerns, publicArea, topicCells } from './public-area.js';
import { PublicAlertStore, type PublicMessage, type StoredPublicAlert } from './public-alert-store.js';
import { buildPublicCap } from './public-cap.js';
import { HAZARD_OF, publicDecision, type PublicDecision } from './public-policy.js';
import { alertTexts } from './public-texts.js';

/** Where retained messages go: the broker, through cloud-sync's feed publisher. */
export interface RetainedSink {
  set(topic: string, payload: string): void;
}

export interface PublicAlertsDeps {
  config: PublicConfig;
  cap: { sender: string; status: CapStatus };
  /** dataDir/public-alerts.db */
  dbPath: string;
  sites: { lookup(id: string): Site | undefined; all(): Site[] };
  /** Every alarm the lifecycle keeps, normal ones included (for the reconciliation at start). */
  alarms: () => AlarmRecord[];
  retained: RetainedSink;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  scheduler?: Scheduler;
}

export type PublicListener = (m: PublicMessage) => void;

const keyOf = (site: string, hazard: PublicHazard) => `${site}#${hazard}`;

/**
 * The residents' side of cloud-sync, as one sink: it watches the alarm
 * lifecycle and keeps the public alerts what the district's policy says
 * they should be (public-policy.ts), made of nothing private: hazard, words,
 * time, coarse H3 area, a random id. Every change is one message in the
 * durable public log, with its CAP 1.2 message; it goes out as the retained
 * `public/<cell>/alerts` of every cell it concerns and to the SSE streams.
 *
 * It works by reconciliation: for a site and hazard, what should be public now
 * is compared with what is, and the difference is sent (Alert, Update, Cancel).
 * At start every alarm is reconciled again, so a crash between the lifecycle's
 * commit and ours loses neither an alert nor an all-clear.
 */
export class PublicAlerts {
  readonly name = 'public-alerts';
  private store: PublicAlertStore | undefined;
  private db: ReturnType<typeof openDurableDatabase> | undefined;
  private readonly listeners = new Set<PublicListener>();
  private readonly withheld = new Set<string>();
  private readonly scheduler: Scheduler;

  constructor(private readonly d: PublicAlertsDeps) {
    this.scheduler = d.scheduler ?? new TimerScheduler(d.clock);
  }

  async start(): Promise<void> {
    this.db = openDurableDatabase(this.d.dbPath);
    this.store = new PublicAlertStore(this.db, this.d.config.logSize);
    // The broker may have lost its retained messages (memory persistence), or missed our last ones.
    const kept = this.store.all();
    this.publishCells(kept.map((s) => s.alert));
    for (const s of kept) if (s.alert.state === 'ended') this.expireLater(s.alert);
    // What the lifecycle says now, against what is public: alerts and all-clears a crash held back go out now.
    const alarms = this.d.alarms();
    const keys = new Set<string>();
    for (const a of alarms) {
      const hazard = HAZARD_OF[a.class];
      if (!hazard || keys.has(keyOf(a.site, hazard))) continue;
      keys.add(keyOf(a.site, hazard));
      this.reconcile(a.site, hazard, alarms);
    }
    for (const s of this.store.current(0)) if (s.alert.state === 'active' && !keys.has(s.key)) this.endOrphan(s);
    this.updateGauge();
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
    this.listeners.clear();
    this.db?.close();
    this.db = undefined;
  }

  /** The lifecycle changed an alarm (its observer): make the public side of its site and hazard match. */
  onAlarm(a: AlarmRecord): void {
    const hazard = HAZARD_OF[a.class];
    if (!hazard || !this.store) return;
    this.reconcile(a.site, hazard, this.d.alarms().filter((x) => x.site === a.site));
  }

  /**
   * One public alert per site and hazard, however many of the site's devices
   * are in alarm (two detectors in one bakery are one fire to the
   * neighbours, and their number would tell something of the building): it is
   * active while at least one of those alarms is to be public, confirmed once
   * a department confirmed one of them, and ends when none is left.
   */
  private reconcile(siteId: string, hazard: PublicHazard, alarms: readonly AlarmRecord[]): void {
    const store = this.store!;
    const site = this.d.sites.lookup(siteId);
    const key = keyOf(siteId, hazard);
    const mine = alarms.filter((a) => a.site === siteId && HAZARD_OF[a.class] === hazard);
    const decisions = mine.map((a) => ({ a, decision: publicDecision(a, { config: this.d.config, status: this.d.cap.status, registered: site !== undefined }) }));
    const wanted = decisions.filter((x) => x.decision.public);
    const confirmed = wanted.some((x) => x.decision.public && x.decision.confirmed);
    const now = this.d.clock.now();
    let sent: PublicMessage[];
    try {
      sent = store.transaction(() => {
        const out: PublicMessage[] = [];
        const [current, ...extra] = store.activeOf(key);
        for (const p of extra) out.push(this.end(p, now));
        if (!wanted.length || !site) {
          if (current) out.push(this.end(current, now));
        } else if (!current) out.push(this.create(key, wanted[0]!.a, site, hazard, confirmed, now));
        else if (current.alert.confirmed !== confirmed) out.push(this.change(current, { confirmed }, 'Update', now));
        return out;
      });
    } catch (err) {
      // The alarms themselves are safe in the lifecycle's journal; the next change, or the next start, tries again.
      this.d.logger.error({ code: 'COSAFE_ERR_PUBLIC_STORE', err: (err as Error).message }, 'could not record a public alert; it is reconciled again at the next change or start');
      return;
    }
    for (const x of decisions) if (!x.decision.public) this.explain(x.a, x.decision);
    this.afterCommit(sent);
  }

  /** Active alerts, and those ended within `endedVisibleMinutes`, concerning any of `cells` (all when empty); newest first. */
  current(cells: readonly string[] = []): PublicAlert[] {
    return (this.store?.current(this.endedSince()) ?? []).map((s) => s.alert).filter((a) => cells.length === 0 || areaConcerns(a.area, cells));
  }

  get(id: string): StoredPublicAlert | undefined {
    return this.store?.get(id);
  }

  /** Messages after the SSE event id `seq`; undefined when the log cannot tell (the client starts afresh). */
  since(seq: number): PublicMessage[] | undefined {
    return this.store?.since(seq);
  }

  lastSeq(): number {
    return this.store?.lastSeq() ?? 0;
  }

  /** Calls `listener` with every public message as it is committed; returns the unsubscribe. */
  listen(listener: PublicListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private create(key: string, a: AlarmRecord, site: Site, hazard: PublicHazard, confirmed: boolean, now: number): PublicMessage {
    const { config } = this.d;
    const area = publicArea(site.location, this.d.sites.all().map((s) => s.location), config);
    if (area.sitesInCell < config.minSitesPerCell) {
      this.d.metrics.inc('cosafe_public_area_below_k_total');
      this.d.logger.warn(
        { code: 'COSAFE_ERR_PUBLIC_AREA', district: a.district, resolution: area.resolution, sitesInCell: area.sitesInCell, k: config.minSitesPerCell },
        `fewer than ${config.minSitesPerCell} registered sites even in the coarsest cell (resolution ${area.resolution}): the alert goes out with that cell`,
      );
    }
    const alert = PublicAlert.parse({
      v: 1,
      // Random: nothing of the site's event or alarm ids can be read back from it.
      id: `pa_${randomBytes(16).toString('hex')}`,
      status: this.d.cap.status === 'Exercise' ? 'Exercise' : 'Actual',
      state: 'active',
      hazard,
      confirmed,
      severity: 'Severe',
      district: a.district ?? site.district,
      texts: alertTexts(config, hazard, false),
      sent: now,
      updated: now,
      area: { resolution: area.resolution, cells: area.cells },
    });
    return this.record({ alert, key, messages: 0, latestXml: '' }, 'Alert', now);
  }

  /** CAP Cancel: the alarms returned to normal, or a department ended the warning. */
  private end(p: StoredPublicAlert, now: number): PublicMessage {
    return this.change(p, { state: 'ended', ended: now, texts: alertTexts(this.d.config, p.alert.hazard, true) }, 'Cancel', now);
  }

  private change(p: StoredPublicAlert, changes: Partial<PublicAlert>, msgType: CapMsgType, now: number): PublicMessage {
    const alert = PublicAlert.parse({ ...p.alert, ...changes, updated: now });
    return this.record({ ...p, alert }, msgType, now);
  }

  private record(p: StoredPublicAlert, msgType: CapMsgType, now: number): PublicMessage {
    const web = this.d.config.baseUrl ? `${this.d.config.baseUrl.replace(/\/$/, '')}/residents` : undefined;
    const latestXml = buildPublicCap({ alert: p.alert, n: p.messages + 1, msgType, sender: this.d.cap.sender, ...(web ? { web } : {}) });
    return this.store!.append({ alert: p.alert, key: p.key, latestXml }, msgType, now);
  }

  private endOrphan(s: StoredPublicAlert): void {
    const now = this.d.clock.now();
    this.afterCommit([this.store!.transaction(() => this.end(s, now))]);
  }

  private afterCommit(sent: PublicMessage[]): void {
    if (sent.length === 0) return;
    this.publishCells(sent.map((m) => m.alert));
    for (const m of sent) {
      this.d.metrics.inc('cosafe_public_messages_total', { hazard: m.alert.hazard, msg_type: m.msgType });
      this.d.logger.info({ publicAlert: m.alert.id, msgType: m.msgType, hazard: m.alert.hazard, district: m.alert.district, cells: m.alert.area.cells.length, resolution: m.alert.area.resolution }, m.msgType === 'Cancel' ? 'public alert ended' : 'public alert published');
      if (m.alert.state === 'ended') this.expireLater(m.alert);
      for (const listener of this.listeners) {
        try {
          listener(m);
        } catch (err) {
          this.d.logger.warn({ err: (err as Error).message }, 'a public alert listener failed');
        }
      }
    }
    this.updateGauge();
  }

  /** Sets the retained `public/<cell>/alerts` of every cell these alerts concern: its alerts now, or none. */
  private publishCells(alerts: readonly PublicAlert[]): void {
    const cells = new Set(alerts.flatMap((a) => topicCells(a.area, this.d.config.coarsestResolution)));
    const now = this.d.clock.now();
    const current = this.current();
    for (const cell of cells) {
      const mine = current.filter((a) => areaConcerns(a.area, [cell]));
      this.d.retained.set(topics.publicAlerts(cell), mine.length ? JSON.stringify(PublicCellAlerts.parse({ v: 1, cell, alerts: mine, updated: now })) : '');
    }
  }

  /** An ended alert leaves the current lists after `endedVisibleMinutes`: its cells are published again then. */
  private expireLater(alert: PublicAlert): void {
    const at = (alert.ended ?? alert.updated) + this.d.config.endedVisibleMinutes * 60_000;
    if (at <= this.d.clock.now()) return;
    this.scheduler.schedule(`expire:${alert.id}`, at + 1, () => this.publishCells([alert]));
  }

  private endedSince(): number {
    return this.d.clock.now() - this.d.config.endedVisibleMinutes * 60_000;
  }

  /** Says once per occurrence why an active alarm of a public class is not public. */
  private explain(a: AlarmRecord, decision: Exclude<PublicDecision, { public: true }>): void {
    const key = `${a.id}.${a.activation}`;
    if (decision.why === 'not-active' || this.withheld.has(key)) return;
    if (decision.why === 'unregistered') {
      this.withheld.add(key);
      this.d.metrics.inc('cosafe_public_withheld_total', { reason: decision.why });
      this.d.logger.warn({ code: 'COSAFE_ERR_SITE_UNREGISTERED', alarmId: a.id }, 'an alarm of a site that is not registered cannot be made public (no position, no area)');
    } else if (decision.why === 'awaiting-confirmation' || decision.why === 'test-event') {
      this.withheld.add(key);
      this.d.metrics.inc('cosafe_public_withheld_total', { reason: decision.why });
    }
    if (this.withheld.size > 10_000) this.withheld.clear();
  }

  private updateGauge(): void {
    this.d.metrics.set('cosafe_public_alerts_active', {}, this.current().filter((a) => a.state === 'active').length);
  }
}
