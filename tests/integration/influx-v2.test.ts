import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadingBatch } from '../../broker/contract/index.js';
import { InfluxStore } from '../../cloud-sync/influx/influx-store.js';
import { InfluxConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { waitUntil } from '../helpers/processes.js';
import { startVictoriaMetrics, type VictoriaMetricsServer } from '../helpers/victoria-metrics.js';

/**
 * The v2 write path (/api/v2/write through @influxdata/influxdb-client) against a
 * real server that speaks it: VictoriaMetrics. Read back through its own export
 * API, since it speaks no InfluxQL.
 */
let vm: VictoriaMetricsServer;
const dir = mkdtempSync(join(tmpdir(), 'cosafe-v2-'));
beforeAll(async () => {
  vm = await startVictoriaMetrics();
});
afterAll(async () => {
  await vm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 0, 1);

function batch(device: string, seq: number, from: number, count: number): ReadingBatch {
  return {
    v: 1,
    gateway: 'gw-1',
    site: 'site-v2',
    boot: 'b',
    seq,
    sentAt: T0,
    readings: Array.from({ length: count }, (_, i) => ({
      device,
      metric: 'temperature',
      value: (from + i) % 100,
      unit: 'Cel',
      time: T0 + from + i,
      quality: 'good' as const,
      profile: 'mqtt-temperature-humidity',
    })),
  };
}

function store(name: string, metrics = new Metrics()) {
  const config = InfluxConfig.parse({ api: 'v2', url: vm.url, bucket: 'cosafe', org: 'cosafe', token: 'unused-by-victoria-metrics', flushIntervalMs: 20, maxRetryDelayMs: 500 });
  return new InfluxStore({ config, bufferPath: join(dir, `${name}.db`), logger: silentLogger, metrics });
}

/** The reading numbers (time - T0) stored for a device, with how often each is there. */
async function numbers(device: string): Promise<number[]> {
  const series = await vm.export(`reading_value{device="${device}"}`);
  return series.flatMap((s) => s.timestamps.map((t) => t - T0)).sort((a, b) => a - b);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('InfluxDB v2 write API (real VictoriaMetrics)', () => {
  it('writes readings with their own time and value, each once, even when written twice', async () => {
    const s = store('basic');
    await s.start();
    s.writeBatch(batch('v2-basic', 1, 0, 500));
    s.writeBatch(batch('v2-basic', 1, 0, 500));
    await s.flush();
    await waitUntil('the 500 readings in VictoriaMetrics', async () => (await numbers('v2-basic')).length === 500, 15_000, 200);
    expect(await numbers('v2-basic')).toEqual(range(500));
    const [series] = await vm.export('reading_value{device="v2-basic"}');
    expect(series?.metric).toMatchObject({ site: 'site-v2', device: 'v2-basic', metric: 'temperature', profile: 'mqtt-temperature-humidity' });
    expect(series?.values.slice(0, 3)).toEqual([0, 1, 2]);
    await s.stop();
  });

  it('buffers on disk while the server is down and writes every reading once when it is back', async () => {
    const metrics = new Metrics();
    const s = store('outage', metrics);
    await s.start();
    s.writeBatch(batch('v2-outage', 1, 0, 1000));
    await s.flush();
    await vm.pause();
    for (let i = 1; i < 10; i++) s.writeBatch(batch('v2-outage', i + 1, i * 1000, 1000));
    await waitUntil('a failed write to be noticed', () => s.health().ok === false, 10_000);
    expect(s.health().buffered).toBeGreaterThan(0);
    await vm.restart();
    await waitUntil('the buffer to drain', () => s.health().buffered === 0, 20_000, 100);
    await waitUntil('all 10000 readings in VictoriaMetrics', async () => (await numbers('v2-outage')).length >= 10_000, 15_000, 200);
    expect(await numbers('v2-outage')).toEqual(range(10_000));
    expect(metrics.total('cosafe_influx_write_errors_total')).toBeGreaterThan(0);
    await s.stop();
  });

  it('says clearly that a server without InfluxQL cannot serve the readings API', async () => {
    const s = store('query');
    await s.start();
    await expect(s.latest({})).rejects.toMatchObject({ code: 'COSAFE_ERR_INFLUX_QUERY' });
    await s.stop();
  });
});
