/**
 * Counters and gauges with labels, rendered in the Prometheus text format. Bad
 * input and dropped data must be counted somewhere a person can see it; this is
 * that place. Kept tiny: a registry, a label key, a renderer.
 */
type Labels = Record<string, string>;

interface Series {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
}

export class Metrics {
  private readonly series = new Map<string, Series>();

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    this.entry(name, help, 'counter', labels).value += by;
  }

  set(name: string, help: string, labels: Labels, value: number): void {
    this.entry(name, help, 'gauge', labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** Sum over every label set of one metric. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.series.get(name)?.values.values() ?? []) sum += v.value;
    return sum;
  }

  render(): string {
    const out: string[] = [];
    for (const s of this.series.values()) {
      out.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      for (const { labels, value } of s.values.values()) {
        const l = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`)
          .join(',');
        out.push(`${s.name}${l ? `{${l}}` : ''} ${value}`);
      }
    }
    return `${out.join('\n')}\n`;
  }

  private entry(name: string, help: string, type: Series['type'], labels: Labels) {
    let s = this.series.get(name);
    if (!s) {
      s = { name, help, type, values: new Map() };
      this.series.set(name, s);
    }
    const key = labelKey(labels);
    let v = s.values.get(key);
    if (!v) {
      v = { labels, value: 0 };
      s.values.set(key, v);
    }
    return v;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}
