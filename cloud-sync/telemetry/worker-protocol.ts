import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { Config } from '../../core/config.js';
import type { LogLevel } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { CounterName, GaugeName, HistogramName, Metrics } from '../../core/metrics.js';
import type { StoreHealth } from '../reading-store.js';
import type { PartitionSites } from './telemetry-lane.js';

/** What the main thread hands the telemetry worker at its start. */
export interface TelemetryWorkerData {
  config: Config;
  brokerUrl: BrokerUrls;
  brokerAuth?: MqttClientAuth;
  logLevel: LogLevel;
}

/** One metric update made in the worker, applied to the process's one registry in the main thread. */
export type MetricOp = ['inc', CounterName, Record<string, string>, number] | ['set', GaugeName, Record<string, string>, number] | ['observe', HistogramName, Record<string, string>, number];

export type ToWorker = { type: 'alarm-subscribed' } | { type: 'stop' } | { type: 'partitions'; id: number; parts: PartitionSites[] };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string; code?: string }
  | { type: 'metrics'; ops: MetricOp[] }
  /** A pino JSON line, logged again by the main thread's logger (its format, its destination). */
  | { type: 'log'; line: string }
  | { type: 'health'; store: StoreHealth; connected: boolean }
  | { type: 'stopped' }
  /** The partitions of a `partitions` message are in place (the sessions of those dropped are closed). */
  | { type: 'partitions-applied'; id: number }
  /** A partition's telemetry session closed. */
  | { type: 'session-closed' };

/** Replays the worker's metric updates on the main thread's registry. */
export function applyMetricOps(metrics: Metrics, ops: readonly MetricOp[]): void {
  for (const [kind, name, labels, value] of ops) {
    if (kind === 'inc') metrics.inc(name, labels, value);
    else if (kind === 'set') metrics.set(name, labels, value);
    else metrics.observe(name, labels, value);
  }
}

/**
 * Makes `metrics` also record every update into `ops`, to be sent to the main
 * thread. Gauges read at scrape time (`collect`) are read by the returned
 * function instead, which the worker calls before each send.
 */
export function recordMetricOps(metrics: Metrics, ops: MetricOp[]): () => void {
  const { inc, set, observe } = metrics;
  const readers = new Map<string, { name: GaugeName; labels: Record<string, string>; read: () => number }>();
  metrics.collect = (name, read, labels = {}) => {
    const key = `${name}${JSON.stringify(labels)}`;
    const entry = { name, labels: labels as Record<string, string>, read };
    readers.set(key, entry);
    return () => {
      if (readers.get(key) !== entry) return;
      ops.push(['set', name, entry.labels, read()]);
      readers.delete(key);
    };
  };
  metrics.inc = (name, labels = {}, by = 1) => {
    inc.call(metrics, name, labels, by);
    ops.push(['inc', name, labels as Record<string, string>, by]);
  };
  metrics.set = (name, labels, value) => {
    set.call(metrics, name, labels, value);
    ops.push(['set', name, labels as Record<string, string>, value]);
  };
  metrics.observe = (name, labels, value) => {
    observe.call(metrics, name, labels, value);
    ops.push(['observe', name, labels as Record<string, string>, value]);
  };
  return () => {
    for (const r of readers.values()) ops.push(['set', r.name, r.labels, r.read()]);
  };
}
