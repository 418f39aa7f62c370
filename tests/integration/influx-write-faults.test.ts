import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReadingBatch } from '../../broker/contract/index.js';
import { InfluxStore } from '../../cloud-sync/influx/influx-store.js';
import { readingLines } from '../../cloud-sync/influx/line-protocol.js';
import { v1WriteTarget } from '../../cloud-sync/influx/v1-write.js';
import { WriteBuffer } from '../../cloud-sync/influx/write-buffer.js';
import { parseRetryAfter, rejectedAll } from '../../cloud-sync/influx/write-outcome.js';
import { InfluxWriter } from '../../cloud-sync/influx/writer.js';
import { InfluxConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * Faults a real InfluxDB does not produce on demand (429 and 503 with
 * Retry-After, a 400 for some lines of a v2 request), from a small HTTP server
 * that answers as InfluxDB does, on both write paths.
 */
interface Request {
  at: number;
  path: string;
  lines: string[];
}

type Answer = (req: Request) => { status: number; headers?: Record<string, string>; body?: string };

async function fakeInflux(answer: Answer): Promise<{ url: string; requests: Request[]; server: Server }> {
  const requests: Request[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Request = { at: Date.now(), path: req.url ?? '', lines: Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean) };
      if (!r.path.includes('write')) return res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[{}]}');
      requests.push(r);
      const a = answer(r);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const dir = mkdtempSync(join(tmpdir(), 'cosafe-faults-'));
let cleanup: (() => Promise<void>)[] = [];
let n = 0;
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function batch(device: string, count: number): ReadingBatch {
  return {
    v: 1,
    gateway: 'gw-1',
    site: 'site-a',
    boot: 'b',
    seq: 1,
    sentAt: 0,
    readings: Array.from({ length: count }, (_, i) => ({ device, metric: 'temperature', value: i, unit: 'Cel', time: 1_000_000 + i, quality: 'good' as const, profile: 'p' })),
  };
}

function lines(device: string, count: number): string[] {
  const out: string[] = [];
  readingLines(batch(device, count), out);
  return out;
}

async function store(config: Partial<InfluxConfig> & { url: string }, metrics = new Metrics()) {
  const s = new InfluxStore({
    config: InfluxConfig.parse({ flushIntervalMs: 10, maxRetryDelayMs: 200, bucket: 'b', ...config }),
    bufferPath: join(dir, `s${++n}.db`),
    logger: silentLogger,
    metrics,
  });
  await s.start();
  cleanup.push(() => s.stop());
  return s;
}

describe('InfluxDB write faults', () => {
  for (const api of ['v1', 'v2'] as const) {
    for (const status of [429, 503]) {
      it(`${api}: waits as long as Retry-After says on ${status}, then writes`, async () => {
        let calls = 0;
        const fake = await fakeInflux(() => (++calls === 1 ? { status, headers: { 'retry-after': '1' }, body: '{"error":"slow down"}' } : { status: 204 }));
        const s = await store({ api, url: fake.url });
        s.writeBatch(batch('d', 10));
        await waitUntil('the backoff after the first answer', () => s.health().backoffMs !== undefined, 5000, 5);
        // The backoff alone would be at most 200 ms (maxRetryDelayMs): the server's 1 s wins.
        expect(s.health().backoffMs).toBeGreaterThanOrEqual(1000);
        await waitUntil('the retry to succeed', () => fake.requests.length === 2 && s.health().buffered === 0, 10_000, 20);
        expect(fake.requests[1]!.lines).toEqual(fake.requests[0]!.lines);
        expect(s.health().backoffMs).toBeUndefined();
      });
    }
  }

  it('backs off exponentially while the server fails, one request probing at a time, without blocking new points from being buffered', async () => {
    let failing = true;
    const fake = await fakeInflux(() => (failing ? { status: 500, body: '{"error":"internal"}' } : { status: 204 }));
    const metrics = new Metrics();
    const config = InfluxConfig.parse({ url: fake.url, batchSize: 100, drainBatchSize: 100, maxInFlight: 4, maxRetryDelayMs: 1000, flushIntervalMs: 10 });
    const path = join(dir, `s${++n}.db`);
    // The delay each retry may wait at most, as the writer chooses it; the waits
    // themselves are cut short here, and the fifth is an hour, so the test
    // counts requests at a point where nothing else can happen.
    const caps: number[] = [];
    const writer = new InfluxWriter({
      config,
      buffer: new WriteBuffer({ path, maxPoints: config.maxBufferedPoints }),
      target: v1WriteTarget(config),
      logger: silentLogger,
      metrics,
      retryDelay: (attempt, cap) => (caps.push(cap), attempt < 5 ? 10 : 3_600_000),
    });
    writer.start();
    for (let i = 0; i < 20; i++) expect(writer.append(lines(`d${i}`, 100), 'reading')).toBe(true);
    await waitUntil('the fifth backoff', () => caps.length === 5, 10_000, 5);
    // 200 ms doubling per attempt, up to maxRetryDelayMs.
    expect(caps).toEqual([400, 800, 1000, 1000, 1000]);
    // Four requests at once, then at most one probe per retry: 4 + 4 at most. (A
    // request of the first four that fails late counts as an attempt of its own.)
    expect(fake.requests.length).toBeGreaterThanOrEqual(5);
    expect(fake.requests.length).toBeLessThanOrEqual(8);
    expect(writer.append(lines('late', 100), 'reading')).toBe(true);
    expect(writer.health()).toMatchObject({ ok: false, buffered: 2100, backoffMs: 3_600_000 });
    await writer.stop();
    // Restarted (the hour is not waited for): everything buffered through the failures is written.
    failing = false;
    const again = new InfluxWriter({ config, buffer: new WriteBuffer({ path, maxPoints: config.maxBufferedPoints }), target: v1WriteTarget(config), logger: silentLogger, metrics });
    again.start();
    cleanup.push(() => again.stop());
    await waitUntil('the buffer to drain', () => again.health().buffered === 0, 10_000, 20);
    expect(metrics.total('cosafe_influx_points_written_total')).toBe(2100);
  });

  it('v2: isolates the lines a 400 names, sets them aside, and writes the rest', async () => {
    const written = new Set<string>();
    const fake = await fakeInflux((r) => {
      const bad = r.lines.filter((l) => l.includes('device=bad'));
      if (bad.length) return { status: 400, body: JSON.stringify({ code: 'invalid', message: `partial write error (${r.lines.length - bad.length} written): unable to parse` }) };
      for (const l of r.lines) written.add(l);
      return { status: 204 };
    });
    const metrics = new Metrics();
    const s = await store({ api: 'v2', url: fake.url }, metrics);
    const mixed = batch('good', 40);
    mixed.readings.splice(17, 0, ...batch('bad', 2).readings);
    s.writeBatch(mixed);
    await s.flush(5000);
    expect(written.size).toBe(40);
    expect(s.health()).toMatchObject({ buffered: 0, rejected: 2 });
    expect(metrics.total('cosafe_influx_points_rejected_total')).toBe(2);
  });

  it('reads Retry-After as seconds or as a date, and partial-write messages of 1.x and 2.x', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(Date.now() + 3000).toUTCString(), Date.now())).toBeGreaterThan(1000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(rejectedAll('partial write: field type conflict: ... dropped=10', 10)).toBe(true);
    expect(rejectedAll('partial write: field type conflict: ... dropped=3', 10)).toBe(false);
    expect(rejectedAll('partial write error (0 written): unable to parse', 4)).toBe(true);
    expect(rejectedAll('unable to parse', 4)).toBe(false);
  });
});
