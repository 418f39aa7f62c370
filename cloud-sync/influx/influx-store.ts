import type { AlarmEvent, ReadingBatch } from '../../broker/contract/index.js';
import type { InfluxConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { WORKER_CHECKPOINT_PAGES } from '../../core/sqlite.js';
import type { HistoryQuery, ReadingStore, StoreHealth, StoredReading } from '../reading-store.js';
import { InfluxQlReader } from './influxql.js';
import { UnsafePoint, eventLine, readingLines } from './line-protocol.js';
import { v1AuthHeaders, v1WriteTarget } from './v1-write.js';
import { v2WriteTarget } from './v2-write.js';
import { WriteBuffer } from './write-buffer.js';
import { InfluxWriter } from './writer.js';

export interface InfluxStoreDeps {
  config: InfluxConfig;
  /** The durable write buffer (SQLite), e.g. dataDir/influx-buffer.db. */
  bufferPath: string;
  logger: Logger;
  metrics: Metrics;
  /** Which lane writes through this store (each lane has its buffer file). */
  lane?: 'alarm' | 'telemetry';
}

/**
 * Readings and events to InfluxDB, through the durable writer: `writeBatch`
 * returns true once the points are in the on-disk buffer, and the writer takes
 * them to InfluxDB through outages. Two write paths, chosen by `api`: v1 /write
 * (InfluxDB 1.x) or the v2 write API (@influxdata/influxdb-client). Reading back
 * uses InfluxQL over /query on both (see influxql.ts for servers without it).
 */
export class InfluxStore implements ReadingStore {
  private readonly writer: InfluxWriter;
  private readonly reader: InfluxQlReader;
  private readonly v1: ReturnType<typeof v1WriteTarget> | undefined;

  constructor(private readonly d: InfluxStoreDeps) {
    const { config } = d;
    this.v1 = config.api === 'v1' ? v1WriteTarget(config) : undefined;
    const target = this.v1 ?? v2WriteTarget(config);
    // The telemetry lane's buffer is written on the worker thread, where no alarm waits for its checkpoints: every
    // 100 pages (SQLite's 1,000 elsewhere) was a checkpoint, fsync included, every six or so 500-reading batches.
    const buffer = new WriteBuffer({ path: d.bufferPath, maxPoints: config.maxBufferedPoints, ...(d.lane === 'telemetry' ? { checkpointPages: WORKER_CHECKPOINT_PAGES } : {}) });
    this.writer = new InfluxWriter({ config, buffer, target, logger: d.logger, metrics: d.metrics, ...(d.lane ? { lane: d.lane } : {}) });
    const headers = config.api === 'v1' ? v1AuthHeaders(config) : config.token ? { Authorization: `Token ${config.token}` } : {};
    this.reader = new InfluxQlReader({ url: config.url, db: config.api === 'v1' ? config.database : (config.bucket ?? config.database), headers });
  }

  async start(): Promise<void> {
    const { config, logger } = this.d;
    this.writer.start();
    if (this.v1) {
      // If InfluxDB is not up yet, the writer creates the database when it is.
      await this.v1.createDatabase().catch((err: Error) => logger.warn({ url: config.url, err: err.message }, 'InfluxDB not reachable yet; buffering on disk until it is'));
    }
    logger.info({ url: config.url, api: config.api, database: config.api === 'v1' ? config.database : (config.bucket ?? config.database), buffer: this.d.bufferPath }, 'writing readings to InfluxDB');
  }

  writeBatch(batch: ReadingBatch): boolean {
    const lines: string[] = [];
    const refused = readingLines(batch, lines);
    if (refused.length) this.refused(refused, { site: batch.site, gateway: batch.gateway, seq: batch.seq });
    return this.writer.append(lines, 'reading');
  }

  writeEvent(event: AlarmEvent): boolean {
    let line: string;
    try {
      line = eventLine(event);
    } catch (err) {
      if (!(err instanceof UnsafePoint)) throw err;
      // Done with: the alarm was dispatched already; only its copy in InfluxDB is missing.
      this.refused([err.message], { site: event.site, gateway: event.gateway, eventId: event.eventId });
      return true;
    }
    return this.writer.append([line], 'event');
  }

  /** Points the contract should have refused: never written, counted and logged (a bug to report, not a state). */
  private refused(reasons: string[], where: Record<string, unknown>): void {
    this.d.metrics.inc('cosafe_influx_points_refused_total', {}, reasons.length);
    this.d.logger.error({ code: 'COSAFE_ERR_INFLUX_UNSAFE', ...where, points: reasons.length, first: reasons[0] }, 'points InfluxDB line protocol cannot carry safely; not written');
  }

  /** Records of the hub itself (the agencies' district summaries), as line protocol; droppable like readings. */
  writeRecords(lines: readonly string[]): boolean {
    return this.writer.append(lines, 'reading');
  }

  latest(filter: { site?: string; device?: string }): Promise<StoredReading[]> {
    return this.reader.latest(filter);
  }

  history(q: HistoryQuery): Promise<StoredReading[]> {
    return this.reader.history(q);
  }

  health(): StoreHealth {
    return { kind: 'influxdb', ...this.writer.health() };
  }

  /** Writes everything buffered now (tests, benchmarks). */
  flush(timeoutMs?: number): Promise<void> {
    return this.writer.flush(timeoutMs);
  }

  stop(): Promise<void> {
    return this.writer.stop();
  }
}
