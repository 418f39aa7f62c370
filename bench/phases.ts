import type { Identity } from '../broker/auth/identity.js';
import type { InfluxServer } from '../tests/helpers/influxdb.js';
import { summarize, type AlarmSample, type LatencySummary } from './alarm-probe.js';
import type { RemoteProbe, Stopwatch } from './remote-probe.js';
import { countReadings } from './influx-direct.js';
import { PublisherProcess, type WorkerDone } from './publishers.js';
import { SMOKE, type Login, type StackProcess } from './stack-processes.js';
import type { CpuMeter } from './system.js';
import { sleep } from './wait.js';
import { epochNow, loadGateway, loadSite, sitesWhere } from './workload.js';

export const PUBLISHERS = 10;
export const READINGS_PER_BATCH = 500;
/** Per simulated gateway, batches awaiting PUBACK: its outbox's window (the gateway default is 16). */
const MAX_IN_FLIGHT = 16;

/** The bench's batched gateways of one phase: each a gateway identity of its own site. */
export function loadIdentities(sitePrefix: string): Identity[] {
  return Array.from({ length: PUBLISHERS }, (_, i) => ({ role: 'gateway', id: `load-${sitePrefix}${i}`, site: loadSite(sitePrefix, i), gateway: loadGateway(i) }));
}

/**
 * What a load phase needs of the system under test: the broker(s) the
 * publishers log in to, the process that runs cloud-sync (its /metrics
 * count what it received; its event loop and RSS are watched) and the
 * gateway of the alarm probe. The embedded
 * Stack (`cosafe hub`) and a ClusterStack (brokers and `cosafe cloud-sync`)
 * are both one.
 */
export interface LoadTarget {
  /** The load is split across them in turn (brokerForPublisher). */
  readonly brokerUrls: readonly string[];
  /** `cosafe hub`, or the `cosafe cloud-sync` of a cluster (with workers, one of them: its event loop and RSS are watched). */
  readonly hub: StackProcess;
  /** Every cloud-sync process, when there are several (workers): what cloud-sync received is their sum. */
  readonly workers?: readonly StackProcess[];
  /** `cosafe gateway`, which the alarm probe's smoke detector reports through. */
  readonly gateway: StackProcess;
  login(id: string): Login;
}

export interface Ctx {
  stack: LoadTarget;
  influx: InfluxServer;
  database: string;
  probe: RemoteProbe;
  cpu: CpuMeter;
  setWorker: (w: PublisherProcess | undefined) => void;
  log: (line: string) => void;
}

/** What the hub did during a phase, from its own /metrics and /proc. */
export interface HubDuring {
  /** Event loop delay (prom-client, 10 ms sampling): beyond the sampling interval, in ms. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  rssMiB: { start: number; max: number; end: number };
  cpu: Record<string, { cpuMs: number; corePercent: number }>;
}

export interface AlarmRun {
  samples: AlarmSample[];
  summary: LatencySummary;
}

/** Alarms one at a time, each after the previous webhook and a gap, until `until` says stop, `max` are sent or `maxMs` have passed. */
export async function alarmsWhile(probe: Stopwatch, o: { gapMs: number; timeoutMs: number; max: number; maxMs?: number; until: () => boolean }): Promise<AlarmSample[]> {
  const samples: AlarmSample[] = [];
  const deadline = Date.now() + (o.maxMs ?? Infinity);
  while (samples.length < o.max && !o.until() && Date.now() < deadline) {
    samples.push(await probe.toggle(o.timeoutMs));
    await sleep(o.gapMs);
  }
  return samples;
}

/** The gateway reads the detector once its adapter has subscribed; a quiet reading it has seen proves it. */
export async function readyForAlarms(probe: Stopwatch, gateway: StackProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const devices = (await gateway.health()).body.devices as { id: string; lastSeen: number | null }[];
    if (devices.some((d) => d.id === SMOKE && d.lastSeen !== null)) return;
    probe.publishQuiet();
    await sleep(200);
  }
  throw new Error(`the gateway did not see the smoke detector ${SMOKE} within ${timeoutMs / 1000} s`);
}

/** Peak RSS of processes over `fn`, sampled every 100 ms (VmHWM is the process's lifetime peak, not the phase's). */
export async function peakRss<T>(procs: Record<string, StackProcess>, fn: () => Promise<T>): Promise<{ result: T; peak: Record<string, number> }> {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const [name, p] of Object.entries(procs)) peak[name] = Math.max(peak[name] ?? 0, p.memory().rssMiB);
  };
  sample();
  const timer = setInterval(sample, 100);
  try {
    const result = await fn();
    sample();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Samples the hub's memory and its event loop over `fn`. `reported`: CPU ms of
 * processes that have exited by the end and measured themselves (the
 * publishers), so they are not counted as the rest of the machine.
 */
export async function watchHub<T>(ctx: Ctx, fn: () => Promise<T>, reported?: (result: T) => Record<string, number>): Promise<{ result: T; hub: HubDuring }> {
  const { hub } = ctx.stack;
  await hub.metrics(); // prom-client resets the event loop histogram on every scrape: this starts the phase's
  const start = hub.memory().rssMiB;
  ctx.cpu.begin();
  const { result, peak } = await peakRss({ hub }, fn);
  const m = await hub.metrics();
  const cpu = ctx.cpu.end(reported?.(result));
  // The histogram holds whole sampling intervals (10 ms); what blocked the loop is the part beyond it.
  const beyond = (s: number | undefined) => Math.max(0, Math.round(((s ?? 0) - 0.01) * 100_000) / 100);
  return {
    result,
    hub: {
      eventLoopDelayMs: { p50: beyond(m.nodejs_eventloop_lag_p50_seconds), p99: beyond(m.nodejs_eventloop_lag_p99_seconds), max: beyond(m.nodejs_eventloop_lag_max_seconds) },
      rssMiB: { start, max: peak.hub ?? start, end: hub.memory().rssMiB },
      cpu,
    },
  };
}

export interface LoadResult {
  readingsSent: number;
  readingsCounted: number;
  lost: number;
  /** First publish until InfluxDB counted them all. */
  ms: number;
  readingsPerSecond: number;
  /** First publish to last PUBACK: how fast the hub took them. */
  publishMs: number;
  /** Peak of readings acknowledged by the broker and not yet received by cloud-sync. */
  maxBrokerBacklogReadings: number;
  /** CPU the publisher process spent from `go` to its last PUBACK (it has exited when the phase's CPU is read). */
  publisherCpuMs: number;
}

/**
 * Batched gateways (the publisher process) through the hub into InfluxDB,
 * `during` alongside; then InfluxDB's own count must equal what the broker
 * acknowledged.
 */
export async function runLoad(
  ctx: Ctx,
  o: { sitePrefix: string; batchesPerPublisher: number; readingsPerSecond?: number; untilStop: boolean; countTimeoutMs: number },
  during: (worker: PublisherProcess) => Promise<void>,
): Promise<LoadResult> {
  const { stack } = ctx;
  const logins = loadIdentities(o.sitePrefix).map((i) => stack.login(i.id));
  const worker = new PublisherProcess(
    {
      brokerUrls: [...stack.brokerUrls],
      runId: o.sitePrefix.replace(/-$/, ''),
      sitePrefix: o.sitePrefix,
      publishers: PUBLISHERS,
      batchesPerPublisher: o.batchesPerPublisher,
      readingsPerBatch: READINGS_PER_BATCH,
      maxInFlight: MAX_IN_FLIGHT,
      t0: Date.now() - 3_600_000,
      untilStop: o.untilStop,
      ...(o.readingsPerSecond ? { readingsPerSecond: o.readingsPerSecond } : {}),
    },
    logins,
  );
  ctx.setWorker(worker);
  try {
    await worker.waitFor('ready', 30_000);
    const received = async () => {
      let sum = 0;
      for (const m of await Promise.all((stack.workers ?? [stack.hub]).map((w) => w.metrics()))) sum += m.cosafe_sync_readings_received_total ?? 0;
      return sum;
    };
    const receivedAt0 = await received();
    let maxBacklog = 0;
    const sampler = setInterval(() => {
      void received()
        .then((n) => (maxBacklog = Math.max(maxBacklog, worker.ackedReadings - (n - receivedAt0))))
        .catch(() => {});
    }, 250);
    worker.go();
    await worker.waitFor('started', 10_000);
    const duringDone = during(worker);
    duringDone.catch(() => {});
    if (o.untilStop) {
      await duringDone;
      worker.stop();
    }
    const done: WorkerDone = await worker.waitFor('done', 300_000);
    clearInterval(sampler);
    const where = sitesWhere(o.sitePrefix);
    let counted = 0;
    let endAt = 0;
    const deadline = Date.now() + o.countTimeoutMs;
    while (Date.now() < deadline) {
      counted = await countReadings(ctx.influx, ctx.database, where);
      endAt = epochNow();
      if (counted >= done.readings) break;
      await sleep(200);
    }
    await duringDone;
    const ms = endAt - done.firstPublishAt;
    return {
      readingsSent: done.readings,
      readingsCounted: counted,
      lost: done.readings - counted,
      ms: Math.round(ms),
      readingsPerSecond: Math.round(done.readings / (ms / 1000)),
      publishMs: Math.round(done.lastAckAt - done.firstPublishAt),
      maxBrokerBacklogReadings: Math.max(0, Math.round(maxBacklog)),
      publisherCpuMs: done.cpuMs,
    };
  } finally {
    await worker.kill();
    ctx.setWorker(undefined);
  }
}
