import type { MetricName } from '../core/metric-catalog.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startStack, type Stack } from '../cli/compose.js';
import { buildConfig, type Config } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import type { InfluxServer } from '../tests/helpers/influxdb.js';
import { waitUntil } from '../tests/helpers/processes.js';
import { FireDepartmentReceiver } from '../tests/simulators/fire-department.js';
import { AlarmProbe } from './alarm-probe.js';
import { countReadings } from './influx-direct.js';
import type { LoadParams } from './mqtt-ceiling.js';
import { PublisherProcess, publisherIdentities, type WorkerDone } from './publishers.js';
import type { CpuMeter } from './system.js';
import { sleep } from './wait.js';
import { epochNow, sitesWhere } from './workload.js';

export const ALARM_SITE = 'alarm-site';
export const ALARM_DEVICE = 'smoke-1';
const ALARM_GATEWAY = 'gw-alarm';

const COUNTERS = [
  'cosafe_sync_readings_received_total',
  'cosafe_sync_invalid_messages_total',
  'cosafe_sync_duplicate_batches_total',
  // A gauge (summed over gateways): batches missing below the highest received.
  'cosafe_sync_sequence_holes',
  'cosafe_influx_points_written_total',
  'cosafe_influx_write_errors_total',
  'cosafe_influx_points_dropped_total',
  'cosafe_influx_points_rejected_total',
  'cosafe_influx_buffer_errors_total',
  'cosafe_sync_events_received_total',
  'cosafe_dispatch_delivered_total',
  'cosafe_dispatch_failures_total',
  'cosafe_dispatch_duplicates_total',
  'cosafe_broker_client_errors_total',
  'cosafe_broker_limit_hits_total',
  'cosafe_broker_persistence_errors_total',
  'cosafe_edge_events_total',
  'cosafe_edge_chattering_total',
] as const satisfies readonly MetricName[];

/** State directories of hubs not yet stopped, for the bench's last-resort cleanup. */
const liveDataDirs = new Set<string>();

/** After a crash: the hub's own stop() may never run, but its files must go. */
export function removeHubLeftovers(): void {
  for (const dir of liveDataDirs) rmSync(dir, { recursive: true, force: true });
  liveDataDirs.clear();
}

const ELD_RESOLUTION_MS = 1;

export interface LoadRunOptions {
  load: LoadParams;
  sitePrefix: string;
  runId: string;
  /** Paced load (readings/s for all publishers together); absent: as fast as the broker acknowledges. */
  readingsPerSecond?: number;
  /** Publish until `during` ends (at least the fixed count), instead of just the fixed count. */
  untilDuringEnds: boolean;
  /** After the publishers are done, how long InfluxDB gets to show every reading. */
  countTimeoutMs: number;
}

export interface LoadRunResult {
  readingsSent: number;
  readingsCounted: number;
  lost: number;
  /** First publish until InfluxDB's count equals what was sent. */
  ms: number;
  readingsPerSecond: number;
  /** First publish to last PUBACK: how fast the broker took the load. */
  publishMs: number;
  publishReadingsPerSecond: number;
  /** Last PUBACK until the count matched: the backlog still inside the hub. */
  drainMs: number;
  countQueries: number;
  /** Acknowledged by the broker but not yet received by cloud-sync: readings queued inside the broker. */
  maxBrokerBacklogReadings: number;
  /** Points held in cloud-sync's InfluxDB buffer. */
  maxBufferedPoints: number;
  /** JS heap plus Buffers of the hub process at their highest during the phase: where a queue inside the hub shows. */
  peakHeapMiB: number;
  /** How late the hub's event loop ran a 1 ms timer: what anything else in the hub (an alarm) waited behind. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  cpu: Record<string, { cpuMs: number; corePercent: number }>;
}

export interface During {
  /** Aborted once InfluxDB holds every reading of the load: the load is over. */
  signal: AbortSignal;
  worker: PublisherProcess;
}

/**
 * The hub as `cosafe` composes it (broker, cloud-sync writing to InfluxDB and
 * to a fire department, a gateway with one smoke detector), in this process,
 * plus the instruments around it: the fire department's receiver, the smoke
 * detector's stopwatch, the load's publisher process.
 */
export class HubUnderTest {
  private constructor(
    readonly stack: Stack,
    readonly config: Config,
    readonly receiver: FireDepartmentReceiver,
    readonly probe: AlarmProbe,
    private readonly influx: InfluxServer,
    private readonly dataDir: string,
  ) {}

  static async start(influx: InfluxServer, database: string): Promise<HubUnderTest> {
    const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-bench-'));
    liveDataDirs.add(dataDir);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    let probe: AlarmProbe | undefined;
    const receiver = await new FireDepartmentReceiver({ secret, onAlarm: (a) => probe?.arrived(a) }).start();
    let stack: Stack | undefined;
    try {
      const config = buildConfig({
        dataDir,
        log: { level: 'silent' },
        broker: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        gateway: { id: ALARM_GATEWAY, site: ALARM_SITE, devices: [{ id: ALARM_DEVICE, profile: 'mqtt-smoke-detector', location: 'bench' }] },
        cloudSync: { influx: { url: influx.url, database }, fireDepartments: [{ id: 'fd', url: receiver.url, secret }] },
      });
      stack = await startStack(config, ['broker', 'cloud-sync', 'gateway'], silentLogger);
      const { broker, cloudSync, gateway } = stack;
      if (!broker || !cloudSync || !gateway) throw new Error('the stack did not start all three roles');

      // Cloud-sync is subscribed once it has the gateway's retained status; before
      // that, QoS 1 messages would find no subscriber and be dropped by the broker.
      await waitUntil(
        'cloud-sync to see the alarm gateway',
        async () => {
          const res = await fetch(`${cloudSync.httpUrl}/api/v1/gateways`, { signal: AbortSignal.timeout(2000) });
          const body = (await res.json()) as { gateways: { gateway: string }[] };
          return body.gateways.some((g) => g.gateway === ALARM_GATEWAY);
        },
        20_000,
      );
      const issue = stack.issueInternal;
      if (!issue) throw new Error('the stack cannot issue internal identities');
      probe = new AlarmProbe({
        brokerUrl: broker.url,
        site: ALARM_SITE,
        device: ALARM_DEVICE,
        gateway: ALARM_GATEWAY,
        sensorLogin: issue({ role: 'device', id: '@bench-smoke-detector', site: ALARM_SITE, device: ALARM_DEVICE }),
        observerLogin: issue({ role: 'service', id: '@bench-observer' }),
        isActive: () => gateway.health().activeConditions.includes(`${ALARM_DEVICE}/smoke`),
      });
      await probe.start();
      // Until the gateway has subscribed, the detector's messages go nowhere.
      const p = probe;
      await waitUntil(
        'the gateway to read the smoke detector',
        () => {
          p.publishQuiet();
          return gateway.health().adapters.some((a) => a.lastValueAt !== null);
        },
        20_000,
      );
      return new HubUnderTest(stack, config, receiver, p, influx, dataDir);
    } catch (err) {
      await probe?.stop().catch(() => {});
      await stack?.stop();
      await receiver.stop();
      rmSync(dataDir, { recursive: true, force: true });
      liveDataDirs.delete(dataDir);
      throw err;
    }
  }

  get database(): string {
    return this.config.cloudSync.influx?.database ?? '';
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of COUNTERS) out[name] = this.stack.metrics.total(name);
    return out;
  }

  /**
   * Runs one load through the hub while `during` runs alongside, then proves
   * every reading arrived: InfluxDB's own count must equal what the broker acknowledged.
   */
  async runLoad(o: LoadRunOptions, cpu: CpuMeter, setWorker: (w: PublisherProcess | undefined) => void, during: (d: During) => Promise<void>): Promise<LoadRunResult> {
    const { broker, cloudSync, metrics, issueInternal } = this.stack;
    const logins = publisherIdentities({ runId: o.runId, sitePrefix: o.sitePrefix, publishers: o.load.publishers }).map((identity) => issueInternal!(identity));
    const worker = new PublisherProcess(
      {
        ...o.load,
        brokerUrl: broker!.url,
        runId: o.runId,
        sitePrefix: o.sitePrefix,
        t0: Date.now() - 3_600_000,
        untilStop: o.untilDuringEnds,
        ...(o.readingsPerSecond ? { readingsPerSecond: o.readingsPerSecond } : {}),
      },
      logins,
    );
    setWorker(worker);
    const over = new AbortController();
    let sampler: NodeJS.Timeout | undefined;
    const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    try {
      await worker.waitFor('ready', 20_000);
      const receivedBefore = metrics.total('cosafe_sync_readings_received_total');
      const writtenBefore = metrics.total('cosafe_influx_points_written_total');
      let maxBuffered = 0;
      let maxBacklog = 0;
      let peakHeap = 0;
      sampler = setInterval(() => {
        maxBuffered = Math.max(maxBuffered, cloudSync!.store.health().buffered ?? 0);
        maxBacklog = Math.max(maxBacklog, worker.ackedReadings - (metrics.total('cosafe_sync_readings_received_total') - receivedBefore));
        const m = process.memoryUsage();
        peakHeap = Math.max(peakHeap, m.heapUsed + m.external);
      }, 50);
      cpu.begin();
      eld.enable();
      worker.go();
      await worker.waitFor('started', 10_000);
      const duringDone = during({ signal: over.signal, worker });
      // Awaited below; until then a failure must not count as unhandled.
      duringDone.catch(() => {});
      if (o.untilDuringEnds) {
        await duringDone;
        worker.stop();
      }
      const done: WorkerDone = await worker.waitFor('done', 120_000);

      // The count is the proof: poll InfluxDB itself, but only once cloud-sync says
      // it wrote enough, so the queries do not compete with the load they measure.
      const where = sitesWhere(o.sitePrefix);
      const total = done.readings;
      let counted = -1;
      let queries = 0;
      let endAt = 0;
      const deadline = Date.now() + o.countTimeoutMs;
      while (Date.now() < deadline) {
        if (metrics.total('cosafe_influx_points_written_total') - writtenBefore >= total) {
          counted = await countReadings(this.influx, this.database, where);
          queries++;
          endAt = epochNow();
          if (counted >= total) break;
          await sleep(50);
        } else {
          await sleep(5);
        }
      }
      over.abort();
      await duringDone;
      eld.disable();
      clearInterval(sampler);
      const cpuUse = cpu.end({ publishers: done.cpuMs });
      if (counted !== total) {
        counted = await countReadings(this.influx, this.database, where);
        endAt = epochNow();
      }
      const ms = endAt - done.firstPublishAt;
      const publishMs = done.lastAckAt - done.firstPublishAt;
      // The histogram holds whole timer intervals; what blocked the loop is the part beyond the interval.
      const eldMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - ELD_RESOLUTION_MS) * 100) / 100);
      return {
        readingsSent: total,
        readingsCounted: counted,
        lost: total - counted,
        ms: Math.round(ms),
        readingsPerSecond: Math.round(total / (ms / 1000)),
        publishMs: Math.round(publishMs),
        publishReadingsPerSecond: Math.round(total / (publishMs / 1000)),
        drainMs: Math.round(endAt - done.lastAckAt),
        countQueries: queries,
        maxBrokerBacklogReadings: maxBacklog,
        maxBufferedPoints: maxBuffered,
        peakHeapMiB: Math.round(peakHeap / 2 ** 20),
        eventLoopDelayMs: { p50: eldMs(eld.percentile(50)), p99: eldMs(eld.percentile(99)), max: eldMs(eld.max) },
        cpu: cpuUse,
      };
    } finally {
      over.abort();
      clearInterval(sampler);
      eld.disable();
      await worker.kill();
      setWorker(undefined);
    }
  }

  /** Smoke readings and events in InfluxDB since `sinceTs` (each toggle is one of each). */
  async alarmRecords(sinceTs: number): Promise<{ readings: number; events: number }> {
    const where = `site = '${ALARM_SITE}' AND time >= ${sinceTs}ms`;
    const readings = await countReadings(this.influx, this.database, where);
    const [series] = await this.influx.query(`SELECT count(state) FROM event WHERE ${where}`, this.database);
    return { readings, events: Number(series?.values[0]?.[1] ?? 0) };
  }

  async stop(): Promise<void> {
    await this.probe.stop().catch(() => {});
    await this.stack.stop();
    await this.receiver.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
    liveDataDirs.delete(this.dataDir);
  }
}
