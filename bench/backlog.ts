import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { topics, type Reading, type ReadingBatch } from '../broker/contract/index.js';
import { startStack, type Stack } from '../cli/compose.js';
import { systemClock } from '../core/clock.js';
import { buildConfig } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import { Metrics } from '../core/metrics.js';
import { Publisher } from '../edge/publisher.js';
import { startInfluxDB, type InfluxServer } from '../tests/helpers/influxdb.js';
import { waitUntil } from '../tests/helpers/processes.js';
import { startTcpProxy } from '../tests/helpers/tcp-proxy.js';

export interface BacklogBenchOptions {
  /** Readings buffered during the outage (each of the two stages). */
  backlogReadings?: number;
  /** Live ingest kept up while the backlog drains, readings per second. */
  liveRatePerSec?: number;
  /** Readings per MQTT message from the gateway (its batch size). */
  batchReadings?: number;
  log?: (line: string) => void;
}

const SITE = 'bench-site';
const GATEWAY = 'gw-bench';
const DEVICES = 20;
/** Reading times start a day ago; reading i is at T0 + i ms on device i % DEVICES. */
const T0 = Date.now() - 86_400_000;

/**
 * After an outage with N readings buffered, how fast the backlog drains while
 * live ingest continues, and what a buffered reading costs on disk. Two stages,
 * each with a real influxd (tests/helpers/influxdb.ts) and the real hub (Aedes
 * broker with its durable persistence, cloud-sync with its durable InfluxDB
 * writer, in this process):
 *
 *  1. hub: InfluxDB is stopped while N readings arrive (as batches from a
 *     gateway) and wait in the hub's buffer (dataDir/influx-buffer.db); then it
 *     starts again and live batches keep arriving at the stated rate.
 *  2. gateway: the link from a gateway (its Publisher and outbox) to the hub is
 *     cut while N readings are accepted into its outbox; then it is restored and
 *     live readings keep being accepted at the stated rate.
 *
 * Drain rate = N / (time from recovery until the backlog is gone). Every reading
 * is checked to be in InfluxDB once at the end of each stage.
 */
export async function runBacklogBench(opts: BacklogBenchOptions = {}): Promise<Record<string, number | string>> {
  const N = opts.backlogReadings ?? 200_000;
  const rate = opts.liveRatePerSec ?? 5000;
  const batchReadings = opts.batchReadings ?? 500;
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-bench-backlog-'));
  const influx = await startInfluxDB();
  let hub: Stack | undefined;
  const figures: Record<string, number | string> = {
    backlog_readings: N,
    live_rate_target_readings_per_s: rate,
    gateway_batch_readings: batchReadings,
  };
  try {
    const config = buildConfig(
      {
        dataDir: join(dir, 'hub'),
        broker: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        cloudSync: { influx: { url: influx.url, database: 'bench', maxBufferedPoints: Math.max(1000, N * 4) } },
      },
      dir,
    );
    hub = await startStack(config, ['broker', 'cloud-sync'], silentLogger);
    const store = hub.cloudSync!.store;
    const written = () => hub!.metrics.total('cosafe_influx_points_written_total');
    const bufferFile = join(config.dataDir, 'influx-buffer.db');
    let next = 0; // the next reading number, across both stages

    /* ---- stage 1: the hub's InfluxDB buffer ---- */
    log(`hub: InfluxDB down, ${N} readings into the hub's buffer`);
    // The gateway logs in like any other: an internal identity of this process, with the gateway role.
    const gatewayLogin = hub.issueInternal!({ role: 'gateway', id: `@gateway:${SITE}:${GATEWAY}`, site: SITE, gateway: GATEWAY });
    const gw = await mqtt.connectAsync(hub.broker!.url, { clientId: 'bench-gateway', ...gatewayLogin });
    let seq = 0;
    const sendBatch = async (count: number) => {
      const batch: ReadingBatch = { v: 1, gateway: GATEWAY, site: SITE, boot: 'bench', seq: ++seq, sentAt: Date.now(), readings: readings(next, count) };
      next += count;
      await gw.publishAsync(topics.readings(SITE, GATEWAY), JSON.stringify(batch), { qos: 1 });
    };
    await influx.pause();
    const stage1From = next;
    for (let sent = 0; sent < N; sent += batchReadings) await sendBatch(Math.min(batchReadings, N - sent));
    await waitUntil('the hub to buffer the backlog', () => (store.health().buffered ?? 0) >= N, 120_000, 50);
    figures.hub_buffer_bytes_per_reading = round(diskBytes(bufferFile) / N, 1);
    await influx.restart();
    const hubDrain = await drainWhileLive({
      live: async (count) => sendBatch(count),
      rate,
      chunk: batchReadings,
      drained: () => (store.health().buffered ?? 0) < batchReadings * 2 && written() >= N,
    });
    figures.hub_drain_seconds = round(hubDrain.seconds, 2);
    figures.hub_drain_readings_per_s = Math.round(N / hubDrain.seconds);
    figures.hub_live_during_drain_readings_per_s = Math.round(hubDrain.live / hubDrain.seconds);
    figures.hub_drain_to_live_ratio = round(N / hubDrain.seconds / (hubDrain.live / hubDrain.seconds), 1);
    await gw.endAsync();
    await waitUntil('stage 1 in InfluxDB', async () => (await countIn(influx, stage1From, next)) === next - stage1From, 60_000, 200);
    log(`hub: drained ${N} in ${figures.hub_drain_seconds} s while ${hubDrain.live} live readings arrived`);

    /* ---- stage 2: the gateway's outbox ---- */
    log(`gateway: link cut, ${N} readings into the outbox`);
    const proxy = await startTcpProxy(hub.broker!.port);
    const gatewayMetrics = new Metrics();
    const outboxFile = join(dir, 'gateway', `outbox-${GATEWAY}.db`);
    const publisher = new Publisher({
      brokerUrl: `mqtt://127.0.0.1:${proxy.port}`,
      auth: gatewayLogin,
      site: SITE,
      gateway: GATEWAY,
      batch: { maxReadings: batchReadings, maxDelayMs: 200 },
      outbox: { path: outboxFile, eventsPath: join(dir, 'gateway', `outbox-${GATEWAY}-alarms.db`), maxTelemetryReadings: Math.max(1000, N * 4), maxInFlight: 16, fsyncEvents: true },
      logger: silentLogger,
      clock: systemClock,
      metrics: gatewayMetrics,
    });
    proxy.cut();
    await publisher.start();
    const stage2From = next;
    // As devices deliver them: a few readings per call.
    for (let i = 0; i < N; i += 10) {
      publisher.addReadings(readings(next, Math.min(10, N - i)));
      next += Math.min(10, N - i);
    }
    await publisher.readingsStored();
    figures.gateway_outbox_bytes_per_reading = round(diskBytes(outboxFile) / N, 1);
    proxy.restore();
    const acked = () => gatewayMetrics.get('cosafe_edge_published_total', { kind: 'readings' });
    const gwDrain = await drainWhileLive({
      live: async (count) => {
        publisher.addReadings(readings(next, count));
        next += count;
      },
      rate,
      chunk: 10,
      drained: () => acked() >= N && publisher.stats().readings < batchReadings * 2,
    });
    figures.gateway_drain_seconds = round(gwDrain.seconds, 2);
    figures.gateway_drain_readings_per_s = Math.round(N / gwDrain.seconds);
    figures.gateway_live_during_drain_readings_per_s = Math.round(gwDrain.live / gwDrain.seconds);
    figures.gateway_drain_to_live_ratio = round(N / gwDrain.seconds / (gwDrain.live / gwDrain.seconds), 1);
    await waitUntil('the outbox to empty', () => publisher.stats().readings === 0, 60_000, 50);
    await publisher.stop();
    await proxy.stop();
    await waitUntil('stage 2 in InfluxDB', async () => (await countIn(influx, stage2From, next)) === next - stage2From, 120_000, 200);
    log(`gateway: drained ${N} in ${figures.gateway_drain_seconds} s while ${gwDrain.live} live readings arrived`);
    figures.checked_in_influxdb_once = next;
    return figures;
  } finally {
    await hub?.stop();
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Feeds live readings at `rate` until `drained()`; returns how long it took and how many live readings went in. */
async function drainWhileLive(o: { live: (count: number) => Promise<void>; rate: number; chunk: number; drained: () => boolean }): Promise<{ seconds: number; live: number }> {
  const started = performance.now();
  let live = 0;
  let sending = Promise.resolve();
  const timer = setInterval(() => {
    // Keep to the rate on the clock, whatever the timer's jitter.
    const due = Math.floor(((performance.now() - started) / 1000) * o.rate) - live;
    for (let n = 0; n < due; n += o.chunk) {
      const count = Math.min(o.chunk, due - n);
      live += count;
      sending = sending.then(() => o.live(count));
    }
  }, 20);
  try {
    await waitUntil('the backlog to drain', o.drained, 600_000, 10);
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - started) / 1000;
  await sending;
  return { seconds, live };
}

function readings(from: number, count: number): Reading[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return { device: `dev-${i % DEVICES}`, metric: 'temperature', value: 20 + (i % 100) / 10, unit: 'Cel', time: T0 + i, quality: 'good', profile: 'mqtt-temperature-humidity' };
  });
}

async function countIn(influx: InfluxServer, from: number, to: number): Promise<number> {
  const series = await influx.query(`SELECT count(value) FROM reading WHERE time >= ${T0 + from}ms AND time < ${T0 + to}ms`, 'bench');
  return (series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/** What a SQLite database takes on disk, WAL included. */
function diskBytes(file: string): number {
  return [file, `${file}-wal`, `${file}-shm`].reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0);
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
