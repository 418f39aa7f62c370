import type Database from 'better-sqlite3';
import { transactionRunner } from '../../core/sqlite.js';
import type { CapMsgType, PublicAlert } from '../../broker/contract/index.js';

/** One public message: a new alert, a change of it, or its end, with its CAP 1.2 message. */
export interface PublicMessage {
  /** Its place in the public log: the SSE event id. */
  seq: number;
  alertId: string;
  /** 1 for the Alert, then counting up: the CAP identifier is `<alertId>` for 1, `<alertId>.<n>` after. */
  n: number;
  msgType: CapMsgType;
  alert: PublicAlert;
  xml: string;
}

export interface StoredPublicAlert {
  alert: PublicAlert;
  /** What it is about, privately: the site and hazard (`<site>#<hazard>`); kept here, never published. */
  key: string;
  /** Messages sent for it so far. */
  messages: number;
  latestXml: string;
}

/** Ended alerts are kept this long (their CAP messages answer aggregators that come back late). */
const KEEP_ENDED_MS = 30 * 24 * 3600_000;

/**
 * The public alerts and the public log, in dataDir/public-alerts.db (SQLite,
 * WAL). The log is bounded (`logSize` messages): it serves SSE clients that
 * resume with Last-Event-ID; one that comes back after the log moved past it
 * gets the current alerts afresh. The link from a public alert to its site
 * lives here only.
 */
export class PublicAlertStore {
  private readonly s: ReturnType<PublicAlertStore['prepare']>;

  constructor(
    private readonly db: Database.Database,
    private readonly logSize: number,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS public_alert (
        id TEXT PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL,
        updated_at INTEGER NOT NULL, messages INTEGER NOT NULL, record TEXT NOT NULL, latest_xml TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS public_alert_key ON public_alert (key);
      CREATE INDEX IF NOT EXISTS public_alert_state ON public_alert (state, updated_at);
      CREATE TABLE IF NOT EXISTS public_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, n INTEGER NOT NULL, msg_type TEXT NOT NULL,
        alert TEXT NOT NULL, xml TEXT NOT NULL
      );
    `);
    this.s = this.prepare(db);
  }

  private run: (<T>(fn: () => T) => T) | undefined;

  transaction<T>(f: () => T): T {
    this.run ??= transactionRunner(this.db);
    return this.run(f);
  }

  /** The active public alerts of a key (one, unless a crash left two). */
  activeOf(key: string): StoredPublicAlert[] {
    return (this.s.activeOf.all(key) as Row[]).map(fromRow);
  }

  get(id: string): StoredPublicAlert | undefined {
    const row = this.s.get.get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Active alerts, and those ended since `endedSince`, newest first. */
  current(endedSince: number): StoredPublicAlert[] {
    return (this.s.current.all(endedSince) as Row[]).map(fromRow);
  }

  /** Every alert kept (active or ended within the keep time), for republishing retained messages after a restart. */
  all(): StoredPublicAlert[] {
    return (this.s.all.all() as Row[]).map(fromRow);
  }

  /** Records a message of an alert (and the alert as it now is); returns its log entry. */
  append(stored: Omit<StoredPublicAlert, 'messages'>, msgType: CapMsgType, now: number): PublicMessage {
    const before = this.get(stored.alert.id);
    const n = (before?.messages ?? 0) + 1;
    const { alert } = stored;
    this.s.put.run(alert.id, stored.key, alert.state, alert.updated, n, JSON.stringify(alert), stored.latestXml);
    const seq = Number(this.s.log.run(alert.id, n, msgType, JSON.stringify(alert), stored.latestXml).lastInsertRowid);
    this.s.trimLog.run(seq - this.logSize);
    this.s.purge.run(now - KEEP_ENDED_MS);
    return { seq, alertId: alert.id, n, msgType, alert, xml: stored.latestXml };
  }

  /** Log entries after `seq`, oldest first; `undefined` when the log cannot say what came after it. */
  since(seq: number): PublicMessage[] | undefined {
    const oldest = (this.s.oldest.get() as { seq: number | null }).seq;
    const last = this.lastSeq();
    if (seq === last) return [];
    // Ahead of the log (another hub's, or a reset store), or behind what it still holds: start afresh.
    if (seq > last || oldest === null || seq < oldest - 1) return undefined;
    return (this.s.since.all(seq) as LogRow[]).map((r) => ({ seq: r.seq, alertId: r.alert_id, n: r.n, msgType: r.msg_type as CapMsgType, alert: JSON.parse(r.alert) as PublicAlert, xml: r.xml }));
  }

  lastSeq(): number {
    return (this.s.last.get() as { seq: number } | undefined)?.seq ?? 0;
  }

  private prepare(db: Database.Database) {
    return {
      get: db.prepare('SELECT * FROM public_alert WHERE id = ?'),
      activeOf: db.prepare("SELECT * FROM public_alert WHERE key = ? AND state = 'active'"),
      current: db.prepare("SELECT * FROM public_alert WHERE state = 'active' OR updated_at >= ? ORDER BY updated_at DESC"),
      all: db.prepare('SELECT * FROM public_alert ORDER BY updated_at DESC'),
      put: db.prepare('INSERT OR REPLACE INTO public_alert (id, key, state, updated_at, messages, record, latest_xml) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      log: db.prepare('INSERT INTO public_log (alert_id, n, msg_type, alert, xml) VALUES (?, ?, ?, ?, ?)'),
      trimLog: db.prepare('DELETE FROM public_log WHERE seq <= ?'),
      purge: db.prepare("DELETE FROM public_alert WHERE state = 'ended' AND updated_at < ?"),
      oldest: db.prepare('SELECT min(seq) AS seq FROM public_log'),
      last: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'public_log'"),
      since: db.prepare('SELECT * FROM public_log WHERE seq > ? ORDER BY seq'),
    };
  }
}

interface Row {
  id: string;
  key: string;
  messages: number;
  record: string;
  latest_xml: string;
}

interface LogRow {
  seq: number;
  alert_id: string;
  n: number;
  msg_type: string;
  alert: string;
  xml: string;
}

function fromRow(r: Row): StoredPublicAlert {
  return { alert: JSON.parse(r.record) as PublicAlert, key: r.key, messages: r.messages, latestXml: r.latest_xml };
}
