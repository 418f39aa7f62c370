import { startInfluxDB, type InfluxServer } from '../tests/helpers/influxdb.js';
import { runBacklogBench } from './backlog.js';
import { removeHubLeftovers } from './hub-under-test.js';
import { runIngestAndAlarms, type IngestParams } from './ingest.js';
import { runInfluxDirect, type InfluxDirectParams } from './influx-direct.js';
import { CEILING_LIMITS, runMqttCeiling, type BrokerPersistence, type LoadParams } from './mqtt-ceiling.js';
import type { PublisherProcess } from './publishers.js';
import { othersBusy, printReport, saveReport, type BenchReport, type Targets } from './report.js';
import { CpuMeter, childPidsNamed, processCpuMs, runInfo } from './system.js';
import { sleep } from './wait.js';

/**
 * `npm run bench`: what the hub carries on this machine, end to end and against
 * the ceilings of its parts, measured in one run so the ratios mean something.
 *
 *   1. influx-direct  InfluxDB alone: what /write takes.
 *   2. mqtt-ceiling   The broker alone: what it carries to a consumer that only counts, with
 *                     its default disk persistence (as the hub runs it; the ratio uses this
 *                     one) and in memory (what durability costs).
 *   3. ingest         Publishers -> broker -> cloud-sync -> InfluxDB, as fast as the broker
 *                     acknowledges, every reading counted back from InfluxDB. Alarms go out one
 *                     at a time while it lasts; the broker acknowledges faster than cloud-sync
 *                     consumes, so they wait behind the readings queued in it: they measure that
 *                     queue, not the alarm path.
 *   4. alarm latency  Smoke detector -> gateway -> broker -> cloud-sync -> signed webhook, 200
 *                     alarms one at a time under a steady load at the ingest target. The load
 *                     is paced and lasts exactly as long as the alarms (it is kept going however
 *                     long they take), and is counted back from InfluxDB too.
 *
 * Everything runs on loopback; influxd and the publishers are child processes,
 * stopped (and temporary directories removed) on every way out.
 */
const startedAt = performance.now();

const READINGS_PER_BATCH = 500;
const PUBLISHERS = 10;
/**
 * Per client, the publishers' own flow control. The broker acknowledges a QoS 1
 * publish once it has journaled it, before subscribers have it, so this does
 * not bound what queues inside the broker (the ingest figures show how much does).
 */
const MAX_IN_FLIGHT = 20;

const influxDirect: InfluxDirectParams = {
  points: 1_000_000,
  pointsPerRequest: 5000,
  publishers: PUBLISHERS,
  readingsPerBatch: READINGS_PER_BATCH,
  concurrencies: [1, 2],
  maxMs: 20_000,
};
// Sized for about 5-15 s each on two cores: the broker with its default disk persistence
// (the one the hub runs, so the ingest ratio uses it) carries 200-400k readings/s here, in memory 1-2.3M.
const mqttCeilings: { persistence: BrokerPersistence; load: LoadParams }[] = [
  { persistence: 'disk', load: { publishers: PUBLISHERS, batchesPerPublisher: 600, readingsPerBatch: READINGS_PER_BATCH, maxInFlight: MAX_IN_FLIGHT } },
  { persistence: 'memory', load: { publishers: PUBLISHERS, batchesPerPublisher: 3000, readingsPerBatch: READINGS_PER_BATCH, maxInFlight: MAX_IN_FLIGHT } },
];
const ingestLoad: LoadParams = { publishers: PUBLISHERS, batchesPerPublisher: 200, readingsPerBatch: READINGS_PER_BATCH, maxInFlight: MAX_IN_FLIGHT };
const ALARMS = { idle: 20, underLoad: 200, gapMs: 40, timeoutMs: 5000, burstTimeoutMs: 30_000, startAfterMs: 300, pacedMaxMs: 30_000 };
const targets: Targets = { ingestReadingsPerSecond: 50_000, alarmP99Ms: 50 };
/** The whole bench stops here, whatever state it is in. */
const WATCHDOG_MS = 180_000;

let influx: InfluxServer | undefined;
let worker: PublisherProcess | undefined;
const setWorker = (w: PublisherProcess | undefined) => (worker = w);

async function cleanup(): Promise<void> {
  await worker?.kill(1000).catch(() => {});
  await influx?.stop().catch(() => {});
  influx = undefined;
  removeHubLeftovers();
}

let finishing: Promise<void> | undefined;
/** The one way out: stop everything we started, then print and save whatever was measured. */
function finish(problem?: string): Promise<void> {
  if (problem) problems.push(problem);
  finishing ??= (async () => {
    clearTimeout(watchdog);
    await cleanup();
    report.ok = problems.length === 0;
    report.disturbed = othersBusy(report);
    report.durationMs = Math.round(performance.now() - startedAt);
    printReport(report, log);
    const file = saveReport(report);
    log(`saved ${file} and bench/results/latest.json`);
    process.exitCode = report.ok ? 0 : 1;
  })();
  return finishing;
}

// A crash anywhere (the broker included: it runs in this process) must not leave influxd or the publishers behind.
const watchdog = setTimeout(() => void finish(`still running after ${WATCHDOG_MS / 1000} s; stopped`).finally(() => process.exit(2)), WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void finish(`interrupted by ${signal}`).finally(() => process.exit(130)));
}
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.once(event, (err: unknown) => void finish(`${event}: ${(err as Error)?.stack ?? String(err)}`).finally(() => process.exit(1)));
}

/** Each phase's wall time, and its window on the monotonic clock in µs, to line it up with a `--cpu-prof` profile. */
const phases: Record<string, { ms: number; monotonicUs: [number, number] }> = {};
/** Backlog phase: large enough to drain for a few seconds, small enough to keep the bench under two minutes. */
const BACKLOG = { readings: 200_000, liveRatePerSec: 5000 };
async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    const end = process.hrtime.bigint();
    phases[name] = { ms: Number((end - start) / 1_000_000n), monotonicUs: [Number(start / 1000n), Number(end / 1000n)] };
  }
}

/**
 * Waits until influxd has been nearly idle for a second (at most `maxMs`): after
 * a phase it snapshots and compacts what it was given, and on two cores that
 * would be taken from the next phase.
 */
async function settleInflux(pid: number | undefined, maxMs = 20_000): Promise<number> {
  if (pid === undefined) return 0;
  const started = performance.now();
  while (performance.now() - started < maxMs) {
    const before = processCpuMs(pid) ?? 0;
    await sleep(1000);
    if ((processCpuMs(pid) ?? 0) - before < 50) break;
  }
  return Math.round(performance.now() - started);
}

const log = (line: string) => console.log(line);
const problems: string[] = [];
const info = runInfo();
const report: BenchReport = {
  bench: 'cosafe',
  schema: 1,
  run: info,
  params: { influxDirect, mqttCeiling: { runs: mqttCeilings, brokerLimits: CEILING_LIMITS }, ingestLoad, alarms: ALARMS, watchdogMs: WATCHDOG_MS },
  targets,
  results: {},
  phases,
  disturbed: [],
  problems,
  ok: false,
  durationMs: 0,
};

try {
  log(`cosafe bench: ${info.cpuCount} x ${info.cpuModel}, node ${info.node}, commit ${info.shortCommit}${info.dirty ? ' (dirty)' : ''}`);
  influx = await startInfluxDB();
  const influxPid = childPidsNamed('influxd')[0];
  const cpu = new CpuMeter(() => ({ main: process.pid, influxd: influxPid }));

  log(`1/4 influx-direct: ${influxDirect.points.toLocaleString('en-US')} points, ${influxDirect.pointsPerRequest} per request, ${influxDirect.concurrencies.join(' then ')} in flight ...`);
  const server = influx;
  const direct = await timed('influx-direct', () => runInfluxDirect(server, influxDirect, cpu));
  report.results.influxDirect = direct;
  log(`    ${direct.best.pointsPerSecond.toLocaleString('en-US')} points/s (${direct.best.concurrency} in flight)`);

  const settledBeforeCeiling = await settleInflux(influxPid);
  const ceilings = await timed('mqtt-ceiling', async () => {
    const out = [];
    for (const { persistence, load } of mqttCeilings) {
      const readings = load.publishers * load.batchesPerPublisher * load.readingsPerBatch;
      log(`2/4 mqtt-ceiling, ${persistence} persistence: ${load.publishers} publishers x ${load.batchesPerPublisher} batches x ${load.readingsPerBatch} = ${readings.toLocaleString('en-US')} readings ...`);
      const c = await runMqttCeiling(load, persistence, cpu, setWorker);
      if (c.readingsReceived !== c.readingsSent) problems.push(`mqtt-ceiling (${persistence}): ${c.readingsReceived} readings received of ${c.readingsSent}`);
      log(`    ${c.readingsPerSecond.toLocaleString('en-US')} readings/s`);
      out.push(c);
    }
    return out;
  });
  report.results.mqttCeiling = ceilings;
  // The hub runs the broker with its default persistence: that ceiling is the one to compare with.
  const ceiling = ceilings.find((c) => c.persistence === 'disk') ?? ceilings[0]!;

  const fixedReadings = ingestLoad.publishers * ingestLoad.batchesPerPublisher * ingestLoad.readingsPerBatch;
  const ingestParams: IngestParams = {
    load: ingestLoad,
    database: 'bench_ingest',
    idleAlarms: ALARMS.idle,
    burstAlarms: ALARMS.underLoad,
    burstAlarmTimeoutMs: ALARMS.burstTimeoutMs,
    // The target: alarms must stay fast while the hub ingests this much.
    pacedReadingsPerSecond: targets.ingestReadingsPerSecond,
    pacedAlarms: ALARMS.underLoad,
    pacedAlarmTimeoutMs: ALARMS.timeoutMs,
    pacedMaxMs: ALARMS.pacedMaxMs,
    alarmGapMs: ALARMS.gapMs,
    alarmStartAfterMs: ALARMS.startAfterMs,
    countTimeoutMs: 60_000,
  };
  const settledBeforeIngest = await settleInflux(influxPid);
  report.params = { ...report.params, ingest: ingestParams, settleInfluxMs: { beforeCeiling: settledBeforeCeiling, beforeIngest: settledBeforeIngest } };
  log(`3/4 ingest: ${fixedReadings.toLocaleString('en-US')} readings as fast as the broker takes them, into cloud-sync and InfluxDB (alarms sent during it)`);
  log(`4/4 alarm latency: ${ALARMS.idle} alarms idle, then ${ALARMS.underLoad} under a steady ${targets.ingestReadingsPerSecond.toLocaleString('en-US')} readings/s ...`);
  const { ingest, alarms } = await timed('ingest+alarms', () => runIngestAndAlarms(server, ingestParams, cpu, setWorker, log));
  report.results.ingest = ingest;
  report.results.alarms = alarms;
  report.results.ratios = {
    ingestToMqttCeiling: Math.round((ingest.readingsPerSecond / ceiling.readingsPerSecond) * 1000) / 1000,
    ingestToInfluxDirect: Math.round((ingest.readingsPerSecond / direct.best.pointsPerSecond) * 1000) / 1000,
  };
  report.results.targetsMet = {
    ingest: ingest.readingsPerSecond >= targets.ingestReadingsPerSecond,
    alarmP99: alarms.underLoad.p99 < targets.alarmP99Ms,
  };
  if (ingest.lost !== 0) problems.push(`ingest: ${ingest.readingsSent} readings sent, ${ingest.readingsCounted} counted in InfluxDB`);
  if (alarms.load.lost !== 0) problems.push(`alarm-latency load: ${alarms.load.readingsSent} readings sent, ${alarms.load.readingsCounted} counted in InfluxDB`);
  if (alarms.missing !== 0) problems.push(`alarms: ${alarms.missing} never reached the fire department`);
  if (alarms.webhooksRejected !== 0) problems.push(`alarms: ${alarms.webhooksRejected} webhooks failed signature verification`);
  // Store-and-forward: how fast a backlog drains once the outage ends, and what it costs on disk.
  log(`5/5 backlog drain: ${BACKLOG.readings.toLocaleString('en-US')} readings buffered at the hub and at the gateway, live ingest ${BACKLOG.liveRatePerSec.toLocaleString('en-US')} readings/s ...`);
  report.results.backlog = await timed('backlog', () => runBacklogBench({ backlogReadings: BACKLOG.readings, liveRatePerSec: BACKLOG.liveRatePerSec, log: (line) => log(`    ${line}`) }));
} catch (err) {
  problems.push(`error: ${(err as Error).stack ?? String(err)}`);
}
await finish();
