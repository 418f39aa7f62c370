import { readingLines } from '../cloud-sync/influx/line-protocol.js';
import type { InfluxServer } from '../tests/helpers/influxdb.js';
import type { CpuMeter } from './system.js';
import { makeBatch } from './workload.js';
import { sleep } from './wait.js';

export interface InfluxDirectParams {
  points: number;
  pointsPerRequest: number;
  /** Gateways whose batches make up the points, as in the ingest phase. */
  publishers: number;
  readingsPerBatch: number;
  concurrencies: number[];
  /** No new request after this; the run then reports what it wrote. */
  maxMs: number;
}

export interface InfluxDirectRun {
  concurrency: number;
  database: string;
  pointsSent: number;
  pointsCounted: number;
  requests: number;
  ms: number;
  pointsPerSecond: number;
  stoppedEarly: boolean;
  cpu: Record<string, { cpuMs: number; corePercent: number }>;
}

export interface InfluxDirectResult {
  runs: InfluxDirectRun[];
  best: InfluxDirectRun;
}

export async function createDatabase(influx: InfluxServer, db: string): Promise<void> {
  const res = await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${db}"` }), signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`CREATE DATABASE ${db}: HTTP ${res.status} ${await res.text()}`);
  // Once, right after a heavy write run, InfluxDB 1.6 answered the first /write to a database it had just
  // created with 404 "database not found": the run waits until the database is listed.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [series] = await influx.query('SHOW DATABASES');
    if (series?.values.some((v) => v[0] === db)) return;
    if (Date.now() > deadline) throw new Error(`CREATE DATABASE ${db}: InfluxDB does not list it after 10 s`);
    await sleep(50);
  }
}

export async function countReadings(influx: InfluxServer, db: string, where = ''): Promise<number> {
  const [series] = await influx.query(`SELECT count(value) FROM reading${where ? ` WHERE ${where}` : ''}`, db);
  return Number(series?.values[0]?.[1] ?? 0);
}

/**
 * What InfluxDB takes when nothing else is in the way: line protocol of the
 * ingest phase's exact shape (made by cloud-sync's own `readingLines`), POSTed
 * to /write in fixed-size requests by `concurrency` loops.
 */
async function writeRun(influx: InfluxServer, p: InfluxDirectParams, bodies: Body[], concurrency: number, cpu: CpuMeter): Promise<InfluxDirectRun> {
  const database = `bench_direct_c${concurrency}`;
  await createDatabase(influx, database);
  const endpoint = `${influx.url}/write?db=${database}&precision=ms`;
  let next = 0;
  let pointsSent = 0;
  let stoppedEarly = false;

  cpu.begin();
  const started = performance.now();
  const loop = async () => {
    while (next < bodies.length) {
      if (performance.now() - started > p.maxMs) {
        stoppedEarly = true;
        return;
      }
      const body = bodies[next++]!;
      const res = await fetch(endpoint, { method: 'POST', body: body.bytes, signal: AbortSignal.timeout(30_000) });
      if (res.status !== 204) throw new Error(`influx-direct: /write answered HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
      await res.body?.cancel();
      pointsSent += body.points;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const ms = performance.now() - started;
  const cpuUse = cpu.end();
  const pointsCounted = await countReadings(influx, database);
  return {
    concurrency,
    database,
    pointsSent,
    pointsCounted,
    requests: next,
    ms: Math.round(ms),
    pointsPerSecond: Math.round(pointsSent / (ms / 1000)),
    stoppedEarly,
    cpu: cpuUse,
  };
}

interface Body {
  bytes: Uint8Array<ArrayBuffer>;
  points: number;
}

/**
 * Request bodies made before the clock starts and reused by every run (each run
 * has its own database): on two cores, making them while writing would take CPU
 * from InfluxDB and measure the writer, not the server.
 */
function makeBodies(p: InfluxDirectParams): Body[] {
  const batchesPerRequest = Math.max(1, Math.round(p.pointsPerRequest / p.readingsPerBatch));
  const requests = Math.ceil(p.points / (batchesPerRequest * p.readingsPerBatch));
  const t0 = Date.now() - 3_600_000;
  const bodies: Body[] = [];
  const encoder = new TextEncoder();
  for (let r = 0; r < requests; r++) {
    const lines: string[] = [];
    for (let b = 0; b < batchesPerRequest; b++) {
      const n = r * batchesPerRequest + b;
      readingLines(makeBatch({ sitePrefix: 'direct-site-', publisher: n % p.publishers, seq: Math.floor(n / p.publishers) + 1, size: p.readingsPerBatch, t0, boot: 'direct' }), lines);
    }
    bodies.push({ bytes: encoder.encode(lines.join('\n')), points: lines.length });
  }
  return bodies;
}

export async function runInfluxDirect(influx: InfluxServer, p: InfluxDirectParams, cpu: CpuMeter): Promise<InfluxDirectResult> {
  const bodies = makeBodies(p);
  const runs: InfluxDirectRun[] = [];
  for (const c of p.concurrencies) {
    const run = await writeRun(influx, p, bodies, c, cpu);
    if (run.pointsCounted !== run.pointsSent) throw new Error(`influx-direct c=${c}: sent ${run.pointsSent} points, InfluxDB counts ${run.pointsCounted}`);
    runs.push(run);
  }
  const best = runs.reduce((a, b) => (b.pointsPerSecond > a.pointsPerSecond ? b : a));
  return { runs, best };
}
