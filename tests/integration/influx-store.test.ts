import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadingBatch } from '../../broker/contract/index.js';
import { InfluxStore } from '../../cloud-sync/influx/influx-store.js';
import { readingLines } from '../../cloud-sync/influx/line-protocol.js';
import { v1WriteTarget } from '../../cloud-sync/influx/v1-write.js';
import { WriteBuffer } from '../../cloud-sync/influx/write-buffer.js';
import { InfluxWriter } from '../../cloud-sync/influx/writer.js';
import { InfluxConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { waitUntil } from '../helpers/processes.js';

let influx: InfluxServer;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-influx-store-'));
beforeAll(async () => {
  influx = await startInfluxDB();
});
afterAll(async () => {
  await influx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 1);
const T1990 = Date.UTC(1990, 0, 1);

function batch(device: string, seq: number, count: number, from = 0, t0 = T0): ReadingBatch {
  return {
    v: 1,
    gateway: 'gw-1',
    site: 'site-a',
    boot: 'b',
    seq,
    sentAt: T0,
    readings: Array.from({ length: count }, (_, i) => ({
      device,
      metric: 'temperature',
      value: 20 + ((from + i) % 10) / 10,
      unit: 'Cel',
      time: t0 + (from + i) * 1000,
      quality: 'good' as const,
      profile: 'mqtt-temperature-humidity',
    })),
  };
}

function store(database: string, metrics = new Metrics(), overrides: Partial<InfluxConfig> = {}) {
  const config = InfluxConfig.parse({ url: influx.url, database, flushIntervalMs: 20, maxRetryDelayMs: 500, ...overrides });
  return new InfluxStore({ config, bufferPath: join(dir, `${database}.db`), logger: silentLogger, metrics });
}

async function count(db: string, device: string): Promise<number> {
  const series = await influx.query(`SELECT count(value) FROM reading WHERE device = '${device}'`, db);
  return (series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

describe('InfluxDB v1 store (real influxd)', () => {
  it('writes readings that InfluxQL reads back, with the device time, and reads them back itself', async () => {
    const s = store('t_basic');
    await s.start();
    s.writeBatch(batch('temp-1', 1, 3));
    await s.flush();
    const series = await influx.query(`SELECT value, quality, unit FROM reading WHERE device = 'temp-1'`, 't_basic');
    expect(series[0]?.values).toEqual([
      [T0, 20, 'good', 'Cel'],
      [T0 + 1000, 20.1, 'good', 'Cel'],
      [T0 + 2000, 20.2, 'good', 'Cel'],
    ]);
    const latest = await s.latest({});
    expect(latest).toEqual([{ site: 'site-a', device: 'temp-1', metric: 'temperature', time: T0 + 2000, value: 20.2, quality: 'good', unit: 'Cel' }]);
    const history = await s.history({ device: 'temp-1', metric: 'temperature', since: T0, limit: 2 });
    expect(history.map((r) => r.value)).toEqual([20.2, 20.1]);
    await s.stop();
  });

  it('writing the same batch twice stores each reading once (idempotent)', async () => {
    const s = store('t_idem');
    await s.start();
    s.writeBatch(batch('temp-2', 1, 100));
    s.writeBatch(batch('temp-2', 1, 100));
    await s.flush();
    expect(await count('t_idem', 'temp-2')).toBe(100);
    await s.stop();
  });

  it('keeps readings on disk while InfluxDB is down, through a restart of cloud-sync, and writes every one when it is back', async () => {
    const metrics = new Metrics();
    let s = store('t_outage', metrics);
    await s.start();
    s.writeBatch(batch('temp-3', 1, 500, 0));
    await s.flush();
    await influx.pause();
    for (let i = 1; i <= 10; i++) expect(s.writeBatch(batch('temp-3', i + 1, 500, i * 500))).toBe(true);
    await waitUntil('a failed write to be noticed', () => s.health().ok === false, 10_000);
    expect(s.health().buffered).toBe(5000);
    // cloud-sync restarts while InfluxDB is still down: the buffer is on disk.
    await s.stop();
    s = store('t_outage', metrics);
    await s.start();
    expect(s.health().buffered).toBe(5000);
    await influx.restart();
    await waitUntil('every buffered reading to reach InfluxDB', async () => (await count('t_outage', 'temp-3')) === 5500, 30_000, 200);
    await waitUntil('the buffer to empty', () => s.health().buffered === 0, 5000);
    expect(s.health()).toMatchObject({ ok: true, buffered: 0 });
    expect(metrics.total('cosafe_influx_write_errors_total')).toBeGreaterThan(0);
    expect(metrics.total('cosafe_influx_points_dropped_total')).toBe(0);
    await s.stop();
  });

  it('sets aside only the points InfluxDB rejects as invalid, writes the rest of the same request, and goes on', async () => {
    const metrics = new Metrics();
    // A string "value" makes later float writes to the same shard (a week of 1990) a
    // field-type conflict, which InfluxDB rejects with HTTP 400; 2026 is another shard.
    await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q: 'CREATE DATABASE t_reject' }) });
    const res = await fetch(`${influx.url}/write?db=t_reject&precision=ms`, {
      method: 'POST',
      body: `reading,site=site-a,device=bad-1,metric=temperature,profile=p value="text" ${T1990}`,
    });
    expect(res.status).toBe(204);
    const s = store('t_reject', metrics, { batchSize: 1000 });
    await s.start();
    // One request: 10 good readings, 3 that conflict, 10 good ones.
    const mixed = batch('good-1', 1, 10);
    mixed.readings.push(...batch('bad-1', 2, 3, 1, T1990).readings, ...batch('good-2', 3, 10).readings);
    s.writeBatch(mixed);
    s.writeBatch(batch('good-3', 4, 10));
    await s.flush();
    expect(metrics.total('cosafe_influx_points_rejected_total')).toBe(3);
    expect(s.health()).toMatchObject({ buffered: 0, rejected: 3 });
    expect([await count('t_reject', 'good-1'), await count('t_reject', 'good-2'), await count('t_reject', 'good-3')]).toEqual([10, 10, 10]);
    await s.stop();
    const db = new Database(join(dir, 't_reject.db'), { readonly: true });
    const aside = db.prepare('SELECT status, error, lines FROM dead_letter').all() as { status: number; error: string; lines: string }[];
    db.close();
    const lines = aside.flatMap((r) => r.lines.split('\n'));
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => l.startsWith('reading,site=site-a,device=bad-1,'))).toBe(true);
    expect(aside.every((r) => r.status === 400 && r.error.includes('field type conflict'))).toBe(true);
  });

  it('shows the true buffered count at every scrape during an outage, and writes again as soon as InfluxDB answers /ping, not after the retry delay', async () => {
    const metrics = new Metrics();
    const config = InfluxConfig.parse({ url: influx.url, database: 't_ping', flushIntervalMs: 20 });
    await v1WriteTarget(config).createDatabase();
    const writer = new InfluxWriter({
      config,
      buffer: new WriteBuffer({ path: join(dir, 't_ping.db'), maxPoints: config.maxBufferedPoints }),
      target: v1WriteTarget(config),
      logger: silentLogger,
      metrics,
      // An hour between retries: only noticing that InfluxDB is back can end the wait within this test.
      retryDelay: () => 3_600_000,
    });
    const scraped = async () => Number(/^cosafe_influx_buffered_points(?:\{[^}]*\})? (\d+)$/m.exec(await metrics.render())?.[1]);
    const append = (seq: number) => {
      const lines: string[] = [];
      readingLines(batch('temp-ping', seq, 100, seq * 100), lines);
      expect(writer.append(lines, 'reading')).toBe(true);
    };
    writer.start();
    append(0);
    await writer.flush();
    expect(await count('t_ping', 'temp-ping')).toBe(100);
    await influx.pause();
    append(1);
    await waitUntil('the failed write to be noticed', () => writer.health().ok === false, 10_000);
    // Issue 9: the gauge stayed at what it was when the backoff began (574 shown while 1,519 were buffered).
    for (let seq = 2; seq <= 5; seq++) {
      append(seq);
      expect(await scraped()).toBe(writer.health().buffered);
    }
    expect(await scraped()).toBe(500);
    await influx.restart();
    await waitUntil('every buffered reading in InfluxDB', async () => (await count('t_ping', 'temp-ping')) === 600, 20_000, 100);
    await waitUntil('the buffer to empty', () => writer.health().buffered === 0, 5000);
    expect(await scraped()).toBe(0);
    expect(writer.health().ok).toBe(true);
    await writer.stop();
  });
});
