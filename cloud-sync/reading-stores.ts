import type { Clock } from '../core/clock.js';
import { dataPath, type Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { InfluxStore } from './influx/influx-store.js';
import type { ReadingStore, StoreHealth } from './reading-store.js';
import type { Lane } from './sinks/sink.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * The reading store one lane writes through: InfluxDB (each lane with its own
 * on-disk buffer, so an event is never queued behind a backlog of readings) or
 * the local SQLite store (one file, shared by both lanes' connections).
 */
export function readingStoreFor(lane: Lane, d: { config: Config; logger: Logger; metrics: Metrics; clock: Clock }): ReadingStore {
  const { config, logger, metrics, clock } = d;
  if (config.cloudSync.influx) {
    const bufferPath = dataPath(config, lane === 'telemetry' ? 'influx-buffer.db' : 'influx-events-buffer.db');
    return new InfluxStore({ config: config.cloudSync.influx, bufferPath, logger: logger.child({ component: 'influx', lane }), metrics, lane });
  }
  return new SqliteStore({ path: dataPath(config, 'readings.db'), retentionHours: config.cloudSync.store.retentionHours, logger, metrics, clock, prune: lane === 'telemetry' });
}

/** Both lanes' stores as one for /health: buffered and rejected add up, the first problem is the detail. */
export function mergeHealth(a: StoreHealth, b: StoreHealth | undefined): StoreHealth {
  if (!b) return a;
  const detail = a.detail ?? b.detail;
  const add = (x?: number, y?: number) => (x === undefined && y === undefined ? undefined : (x ?? 0) + (y ?? 0));
  const buffered = add(a.buffered, b.buffered);
  const rejected = add(a.rejected, b.rejected);
  return {
    kind: a.kind,
    ok: a.ok && b.ok,
    ...(detail !== undefined ? { detail } : {}),
    ...(buffered !== undefined ? { buffered } : {}),
    ...(rejected !== undefined ? { rejected } : {}),
  };
}
