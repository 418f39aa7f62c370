import { CosafeError } from '../../core/errors.js';
import type { HistoryQuery, StoredReading } from '../reading-store.js';

interface InfluxQueryResult {
  error?: string;
  results?: { error?: string; series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[] }[];
}

/**
 * Reads readings back with InfluxQL over /query, which InfluxDB 1.x, 2.x (through
 * DBRP mappings, the v1-compatible API) and 3.x answer. A server that does not
 * speak InfluxQL (VictoriaMetrics) answers with an error, reported as
 * COSAFE_ERR_INFLUX_QUERY: query it in its own language.
 */
export class InfluxQlReader {
  constructor(private readonly o: { url: string; db: string; headers: Record<string, string> }) {}

  async latest(filter: { site?: string; device?: string }): Promise<StoredReading[]> {
    const where = [filter.site ? `site = ${quoteLiteral(filter.site)}` : '', filter.device ? `device = ${quoteLiteral(filter.device)}` : '']
      .filter(Boolean)
      .join(' AND ');
    // Not last(): with several selectors InfluxQL 1.x reports time 0. LIMIT applies per series.
    const rows = await this.select(`SELECT value, quality, unit FROM reading${where ? ` WHERE ${where}` : ''} GROUP BY site, device, metric ORDER BY time DESC LIMIT 1`);
    return rows.sort((a, b) => a.device.localeCompare(b.device) || a.metric.localeCompare(b.metric));
  }

  async history(q: HistoryQuery): Promise<StoredReading[]> {
    const since = q.since ?? Date.now() - 3_600_000;
    const limit = Math.min(q.limit ?? 1000, 10_000);
    const site = q.site ? ` AND site = ${quoteLiteral(q.site)}` : '';
    return this.select(
      `SELECT value, quality, unit FROM reading WHERE device = ${quoteLiteral(q.device)} AND metric = ${quoteLiteral(q.metric)}${site} AND time >= ${since}ms GROUP BY site, device, metric ORDER BY time DESC LIMIT ${limit}`,
    );
  }

  private async select(q: string): Promise<StoredReading[]> {
    const params = new URLSearchParams({ q, db: this.o.db, epoch: 'ms' });
    const res = await fetch(`${this.o.url.replace(/\/$/, '')}/query?${params}`, { headers: this.o.headers, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    let body: InfluxQueryResult;
    try {
      body = JSON.parse(text) as InfluxQueryResult;
    } catch {
      throw new CosafeError('COSAFE_ERR_INFLUX_QUERY', `InfluxDB at ${this.o.url} did not answer the InfluxQL query (HTTP ${res.status}): ${text.slice(0, 200)}`);
    }
    const error = body.error ?? body.results?.find((r) => r.error)?.error;
    if (!res.ok || error) throw new CosafeError('COSAFE_ERR_INFLUX_QUERY', `InfluxQL query failed (HTTP ${res.status}): ${error ?? 'no detail'}`);
    const out: StoredReading[] = [];
    for (const series of body.results?.[0]?.series ?? []) {
      // VictoriaMetrics answers any /query with its list of databases: it speaks no InfluxQL.
      if (series.name !== 'reading' || !series.columns.includes('value')) {
        throw new CosafeError('COSAFE_ERR_INFLUX_QUERY', `${this.o.url} does not answer InfluxQL (a SELECT came back as "${series.name}"); query it in its own language`);
      }
      const col = (name: string) => series.columns.indexOf(name);
      const [ti, vi, qi, ui] = [col('time'), col('value'), col('quality'), col('unit')];
      for (const row of series.values) {
        out.push({
          site: series.tags?.site ?? '',
          device: series.tags?.device ?? '',
          metric: series.tags?.metric ?? '',
          time: row[ti] as number,
          value: row[vi] as number,
          quality: String(row[qi] ?? ''),
          unit: String(row[ui] ?? ''),
        });
      }
    }
    return out;
  }
}

/** InfluxQL string literal. */
function quoteLiteral(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
