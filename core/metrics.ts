import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { metricCatalog, type CounterName, type GaugeName, type HistogramName, type LabelsOf, type MetricName } from './metric-catalog.js';

export { metricCatalog };
export type { CounterName, GaugeName, HistogramName, MetricName };

/** A histogram's state: cumulative bucket counts (Prometheus `le`), sum and count. */
export interface HistogramTotals {
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

export interface MetricsOptions {
  /**
   * Also export the process's own metrics (CPU, memory, event loop delay as
   * `nodejs_eventloop_lag_*_seconds`, GC): on for the processes cosafe runs,
   * off for the many short-lived registries of tests.
   */
  process?: boolean;
}

/**
 * The metrics of one process, in prom-client: bad input and dropped data must
 * be counted somewhere a person can see it, and this is that place. Names,
 * kinds, help texts and labels come from the one catalog (metric-catalog.ts).
 *
 * prom-client reads values asynchronously; the demo's flow report, the bench
 * and the tests read them synchronously with `get` and `total`, so counters
 * and gauges keep a running copy here too (one map update per call).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly made = new Map<MetricName, Metric>();
  private readonly values = new Map<MetricName, Map<string, number>>();
  /** Gauges read at scrape time: per metric, per label set, where the value comes from. */
  private readonly readers = new Map<MetricName, Map<string, { labels: Record<string, string>; read: () => number }>>();

  constructor(options: MetricsOptions = {}) {
    if (options.process) collectDefaultMetrics({ register: this.registry });
  }

  inc<N extends CounterName>(name: N, labels: LabelsOf<N> = {}, by = 1): void {
    (this.metric(name) as Counter).inc(labels as Record<string, string>, by);
    const key = labelKey(labels);
    const series = this.series(name);
    series.set(key, (series.get(key) ?? 0) + by);
  }

  set<N extends GaugeName>(name: N, labels: LabelsOf<N>, value: number): void {
    (this.metric(name) as Gauge).set(labels as Record<string, string>, value);
    this.series(name).set(labelKey(labels), value);
  }

  /**
   * A gauge whose value is read from `read` whenever it is scraped or asked for,
   * so it is true at every scrape, not only as of the last time code set it
   * (a buffer that grows while its writer waits to retry). One reader per label
   * set: a second one replaces the first. Returns what removes the reader.
   */
  collect<N extends GaugeName>(name: N, read: () => number, labels: LabelsOf<N> = {}): () => void {
    this.metric(name);
    let byLabels = this.readers.get(name);
    if (!byLabels) this.readers.set(name, (byLabels = new Map()));
    const key = labelKey(labels);
    const entry = { labels: labels as Record<string, string>, read };
    byLabels.set(key, entry);
    return () => {
      if (byLabels.get(key) !== entry) return;
      // The last value read stays exported, as a gauge set by hand would.
      this.sample(name, key, entry);
      byLabels.delete(key);
    };
  }

  /** Records one observation of a histogram (in the metric's unit, seconds for latencies). */
  observe<N extends HistogramName>(name: N, labels: LabelsOf<N>, value: number): void {
    (this.metric(name) as Histogram).observe(labels as Record<string, string>, value);
    // For a histogram, `get` and `total` give the number of observations.
    const key = labelKey(labels);
    const series = this.series(name);
    series.set(key, (series.get(key) ?? 0) + 1);
  }

  /** The value of one series (labels exactly as given when it was counted). */
  get<N extends MetricName>(name: N, labels: LabelsOf<N> = {}): number {
    const key = labelKey(labels);
    const reader = this.readers.get(name)?.get(key);
    if (reader) this.sample(name, key, reader);
    return this.values.get(name)?.get(key) ?? 0;
  }

  /** Sum over every label set of one metric. */
  total(name: MetricName): number {
    this.sampleAll(name);
    let sum = 0;
    for (const v of this.values.get(name)?.values() ?? []) sum += v;
    return sum;
  }

  /**
   * A histogram summed over its label sets: cumulative counts per upper bound
   * (`le`, +Inf last), the sum and the count of observations so far.
   */
  async histogram(name: HistogramName): Promise<HistogramTotals> {
    const buckets = new Map<number, number>();
    let sum = 0;
    let count = 0;
    const m = this.made.get(name) as Histogram | undefined;
    for (const v of m ? (await m.get()).values : []) {
      if (v.metricName === `${name}_bucket`) {
        const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      } else if (v.metricName === `${name}_sum`) sum += v.value;
      else if (v.metricName === `${name}_count`) count += v.value;
    }
    return { buckets: [...buckets].sort((a, b) => a[0] - b[0]).map(([le, n]) => ({ le, count: n })), sum, count };
  }

  /** The Prometheus text format, for `/metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private series(name: MetricName): Map<string, number> {
    let s = this.values.get(name);
    if (!s) this.values.set(name, (s = new Map()));
    return s;
  }

  private sample(name: MetricName, key: string, reader: { labels: Record<string, string>; read: () => number }): void {
    const value = reader.read();
    (this.made.get(name) as Gauge).set(reader.labels, value);
    this.series(name).set(key, value);
  }

  private sampleAll(name: MetricName): void {
    for (const [key, reader] of this.readers.get(name) ?? []) this.sample(name, key, reader);
  }

  private metric(name: MetricName): Metric {
    let m = this.made.get(name);
    if (m) return m;
    const def = metricCatalog[name];
    const common = { name, help: def.help, labelNames: [...def.labels], registers: [this.registry] };
    const sampleAll = () => this.sampleAll(name);
    if (def.kind === 'counter') m = new Counter(common);
    // prom-client calls collect() on every scrape, before it reads the values.
    else if (def.kind === 'gauge') m = new Gauge({ ...common, collect: sampleAll });
    else m = new Histogram({ ...common, buckets: [...((def as { buckets?: readonly number[] }).buckets ?? [])] });
    this.made.set(name, m);
    return m;
  }
}

function labelKey(labels: Record<string, string | undefined>): string {
  return Object.keys(labels)
    .filter((k) => labels[k] !== undefined)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}
