/**
 * What Grafana does to an InfluxQL query of its InfluxDB data source before
 * the server sees it, so tests can run a dashboard's queries as Grafana would
 * (Grafana itself is not installable here):
 *
 * - template variables, in the browser (public/app/features/templating and the
 *   data source's `interpolateQueryExpr`): a variable that is multi-value or has
 *   "All" is regex-escaped, one value as itself, several as `(a|b)`; "All" is
 *   the variable's custom `allValue` as it is, or else every value as `(a|b|...)`;
 * - `$timeFilter` / `$__timeFilter`, `$__interval` / `$interval`, in the backend
 *   (pkg/tsdb/influxdb/influxql): `time >= <from>ms and time <= <to>ms`, and the
 *   interval of the time range over the data points, rounded as Grafana rounds
 *   it, never below the panel's (or data source's) minimum interval.
 */

/** A template variable as the dashboard JSON declares it. */
export interface DashboardVariable {
  name: string;
  query: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}

/** What is selected: "All", or some of the values. */
export type Selection = { all: true; values: string[] } | { all: false; values: string[] };

/** @grafana/data's escapeRegex. */
export const escapeRegex = (value: string): string => value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

function formatValue(v: DashboardVariable, s: Selection): string {
  if (s.all && v.allValue !== undefined) return v.allValue; // a custom all value is not formatted
  const values = s.values;
  if (!v.multi && !v.includeAll) return values[0] ?? '';
  const escaped = values.map(escapeRegex);
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/** Replaces `$name`, `${name}` and `[[name]]` with the selection, as Grafana's template service does. */
export function interpolateVariables(query: string, variables: readonly DashboardVariable[], selected: Record<string, Selection>): string {
  let out = query;
  // Longest names first, so `$site` never eats the start of `$site_group`.
  for (const v of [...variables].sort((a, b) => b.name.length - a.name.length)) {
    const s = selected[v.name];
    if (!s) continue;
    const value = formatValue(v, s);
    out = out.split(`\${${v.name}}`).join(value).split(`[[${v.name}]]`).join(value);
    out = out.replace(new RegExp(`\\$${v.name}(?![A-Za-z0-9_])`, 'g'), () => value);
  }
  return out;
}

const UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

export function parseDuration(d: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`not a Grafana interval: ${d}`);
  return Number(m[1]) * UNITS.find(([u]) => u === m[2])![1];
}

/** Grafana's interval text (rangeutil.secondsToHms for intervals). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** @grafana/data rangeutil.roundInterval. */
function roundInterval(ms: number): number {
  const steps: [number, number][] = [
    [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1500, 1000], [3500, 2000], [7500, 5000], [12500, 10_000], [17500, 15_000], [25000, 20_000], [45000, 30_000],
    [90000, 60_000], [210000, 120_000], [450000, 300_000], [750000, 600_000], [1050000, 900_000], [1500000, 1_200_000], [2700000, 1_800_000], [5400000, 3_600_000], [9000000, 7_200_000],
    [16200000, 10_800_000], [32400000, 21_600_000], [86400000, 43_200_000], [604800000, 86_400_000],
  ];
  return steps.find(([below]) => ms < below)?.[1] ?? 604_800_000;
}

/** The `$__interval` Grafana computes for a time range, a panel width in data points, and a minimum interval. */
export function grafanaInterval(range: { from: number; to: number }, minInterval: string | undefined, maxDataPoints = 1000): string {
  const raw = roundInterval((range.to - range.from) / maxDataPoints);
  return formatDuration(Math.max(raw, minInterval ? parseDuration(minInterval) : 0));
}

/** The backend's macros. */
export function applyMacros(query: string, range: { from: number; to: number }, interval: string): string {
  const timeFilter = `time >= ${range.from}ms and time <= ${range.to}ms`;
  return query
    .replaceAll('$__timeFilter', timeFilter)
    .replaceAll('$timeFilter', timeFilter)
    .replaceAll('$__interval_ms', String(parseDuration(interval)))
    .replaceAll('$__interval', interval)
    .replaceAll('$interval', interval);
}
