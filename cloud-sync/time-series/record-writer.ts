import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { UnsafePoint } from '../influx/line-protocol.js';

/** Where the hub's own records go: InfluxDB's durable buffer (true once they are on disk). */
export type WriteRecords = (lines: readonly string[]) => boolean;

/**
 * Turns each item into a line of one measurement and buffers them, counting
 * what went and what did not: an item whose values cannot be written
 * (UnsafePoint) is left out alone; a buffer that fails refuses them all.
 * True when every line that could be made was buffered.
 */
export function recordPoints<T>(d: { write: WriteRecords; metrics: Metrics; logger: Logger }, measurement: string, items: readonly T[], toLine: (item: T) => string): boolean {
  const lines: string[] = [];
  for (const item of items) {
    try {
      lines.push(toLine(item));
    } catch (err) {
      if (!(err instanceof UnsafePoint)) throw err;
      d.metrics.inc('cosafe_timeseries_errors_total', { measurement });
      d.logger.error({ code: 'COSAFE_ERR_INFLUX_UNSAFE', measurement, err: err.message }, 'a record of the hub cannot be written as line protocol; left out');
    }
  }
  if (lines.length === 0) return true;
  if (!d.write(lines)) {
    d.metrics.inc('cosafe_timeseries_errors_total', { measurement }, lines.length);
    d.logger.warn({ measurement, points: lines.length }, 'records of the hub could not be buffered for InfluxDB');
    return false;
  }
  d.metrics.inc('cosafe_timeseries_points_total', { measurement }, lines.length);
  return true;
}
