import Database from 'better-sqlite3';
import type { AlarmEvent, ReadingBatch } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import { CosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { ensurePrivateDatabase } from '../core/private-files.js';
import type { HistoryQuery, ReadingStore, StoreHealth, StoredReading } from './reading-store.js';

export interface SqliteStoreDeps {
  path: string;
  retentionHours: number;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** This connection prunes history past retention (one of the connections to the file does; default true). */
  prune?: boolean;
}

const PRUNE_EVERY_MS = 60_000;

/**
 * The embedded default when no InfluxDB is configured: readings in a local
 * SQLite file (WAL mode), kept for a retention period, readable back as the
 * latest value per device and metric and as the recent history of one metric.
 * The two lanes each open a connection to the file (the telemetry lane may run
 * in a worker thread): SQLite's WAL lets one write while the other reads.
 */
export class SqliteStore implements ReadingStore {
  private db: Database.Database | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private insertBatch: ((batch: ReadingBatch) => void) | undefined;
  private lastError: string | undefined;

  constructor(private readonly d: SqliteStoreDeps) {}

  async start(): Promise<void> {
    try {
      ensurePrivateDatabase(this.d.path);
      const db = new Database(this.d.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`
        CREATE TABLE IF NOT EXISTS reading (
          site TEXT NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL, time INTEGER NOT NULL,
          value REAL NOT NULL, unit TEXT NOT NULL, quality TEXT NOT NULL, profile TEXT NOT NULL,
          PRIMARY KEY (site, device, metric, time)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS reading_time ON reading (time);
        CREATE TABLE IF NOT EXISTS latest (
          site TEXT NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL, time INTEGER NOT NULL,
          value REAL NOT NULL, unit TEXT NOT NULL, quality TEXT NOT NULL,
          PRIMARY KEY (site, device, metric)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS event (
          event_id TEXT PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL, class TEXT NOT NULL,
          state TEXT NOT NULL, time INTEGER NOT NULL, body TEXT NOT NULL
        );
      `);
      // The reading time is part of the key: a resent reading replaces itself (idempotent).
      const insert = db.prepare(
        'INSERT OR REPLACE INTO reading (site, device, metric, time, value, unit, quality, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      // Only a newer reading moves "latest": a late resend must not show an old value as current.
      const upsertLatest = db.prepare(`
        INSERT INTO latest (site, device, metric, time, value, unit, quality) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (site, device, metric) DO UPDATE SET time = excluded.time, value = excluded.value, unit = excluded.unit, quality = excluded.quality
        WHERE excluded.time >= latest.time`);
      this.insertBatch = db.transaction((batch: ReadingBatch) => {
        for (const r of batch.readings) {
          insert.run(batch.site, r.device, r.metric, r.time, r.value, r.unit, r.quality, r.profile);
          upsertLatest.run(batch.site, r.device, r.metric, r.time, r.value, r.unit, r.quality);
        }
      });
      this.db = db;
      if (this.d.prune !== false) {
        this.prune();
        this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS);
        this.pruneTimer.unref();
      }
      this.d.logger.info({ path: this.d.path, retentionHours: this.d.retentionHours }, 'keeping readings in the local SQLite store (no InfluxDB configured)');
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_STORE', `cannot open the reading store ${this.d.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  writeBatch(batch: ReadingBatch): boolean {
    try {
      this.requireDb();
      this.insertBatch?.(batch);
      this.d.metrics.inc('cosafe_store_points_written_total', {}, batch.readings.length);
      this.lastError = undefined;
      return true;
    } catch (err) {
      // A full disk is an operational fault: counted and visible in /health, not a crash.
      this.lastError = (err as Error).message;
      this.d.metrics.inc('cosafe_store_write_errors_total');
      this.d.logger.error({ code: 'COSAFE_ERR_STORE', err: this.lastError }, 'local store write failed');
      return false;
    }
  }

  writeEvent(event: AlarmEvent): boolean {
    try {
      this.requireDb()
        .prepare('INSERT OR IGNORE INTO event (event_id, site, device, class, state, time, body) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(event.eventId, event.site, event.device, event.class, event.state, event.time, JSON.stringify(event));
      return true;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.d.logger.error({ code: 'COSAFE_ERR_STORE', err: this.lastError }, 'local store could not record an event');
      return false;
    }
  }

  async latest(filter: { site?: string; device?: string }): Promise<StoredReading[]> {
    const rows = this.requireDb()
      .prepare(
        `SELECT site, device, metric, time, value, unit, quality FROM latest
         WHERE (@site IS NULL OR site = @site) AND (@device IS NULL OR device = @device) ORDER BY site, device, metric`,
      )
      .all({ site: filter.site ?? null, device: filter.device ?? null });
    return rows as StoredReading[];
  }

  async history(q: HistoryQuery): Promise<StoredReading[]> {
    const rows = this.requireDb()
      .prepare(
        `SELECT site, device, metric, time, value, unit, quality FROM reading
         WHERE device = @device AND metric = @metric AND (@site IS NULL OR site = @site) AND time >= @since
         ORDER BY time DESC LIMIT @limit`,
      )
      .all({ device: q.device, metric: q.metric, site: q.site ?? null, since: q.since ?? this.d.clock.now() - 3_600_000, limit: Math.min(q.limit ?? 1000, 10_000) });
    return rows as StoredReading[];
  }

  health(): StoreHealth {
    return { kind: 'sqlite', ok: this.db !== undefined && this.lastError === undefined, ...(this.lastError ? { detail: this.lastError } : {}) };
  }

  async stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.db?.close();
    this.db = undefined;
  }

  /** History past retention goes; `latest` stays, so a device that went silent still shows when it last spoke. */
  private prune(): void {
    const cutoff = this.d.clock.now() - this.d.retentionHours * 3_600_000;
    try {
      const removed = this.requireDb().prepare('DELETE FROM reading WHERE time < ?').run(cutoff).changes;
      if (removed) this.d.logger.debug({ removed }, 'pruned readings past retention');
    } catch (err) {
      this.d.logger.error({ code: 'COSAFE_ERR_STORE', err: (err as Error).message }, 'could not prune the local store');
    }
  }

  private requireDb(): Database.Database {
    if (!this.db) throw new CosafeError('COSAFE_ERR_STORE', 'the reading store is not open');
    return this.db;
  }
}
