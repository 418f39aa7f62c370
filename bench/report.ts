import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadRunResult } from './hub-under-test.js';
import type { AlarmResult, IngestResult } from './ingest.js';
import type { InfluxDirectResult } from './influx-direct.js';
import type { MqttCeilingResult } from './mqtt-ceiling.js';
import type { RunInfo } from './system.js';

export interface Targets {
  ingestReadingsPerSecond: number;
  alarmP99Ms: number;
}

export interface BenchReport {
  bench: 'cosafe';
  schema: 1;
  run: RunInfo;
  params: Record<string, unknown>;
  targets: Targets;
  results: {
    influxDirect?: InfluxDirectResult;
    mqttCeiling?: MqttCeilingResult[];
    ingest?: IngestResult;
    alarms?: AlarmResult;
    ratios?: { ingestToMqttCeiling: number; ingestToInfluxDirect: number };
    targetsMet?: { ingest: boolean; alarmP99: boolean };
    backlog?: Record<string, number | string>;
  };
  phases: Record<string, { ms: number; monotonicUs: [number, number] }>;
  /** Phases during which other processes took CPU from the bench (see `cpu.others` in each phase). */
  disturbed: string[];
  /** Why the run is not ok, if it is not. */
  problems: string[];
  ok: boolean;
  durationMs: number;
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes `<UTC timestamp>-<commit>.json` and `latest.json`, each through a temporary file so no reader sees half of one. */
export function saveReport(report: BenchReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = report.run.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const file = join(RESULTS_DIR, `${stamp}-${report.run.shortCommit}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  for (const target of [file, join(RESULTS_DIR, 'latest.json')]) {
    writeFileSync(`${target}.tmp`, json);
    renameSync(`${target}.tmp`, target);
  }
  return file;
}

const n = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : String(x));
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : String(x));
const cpu = (c: Record<string, { corePercent: number }>) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${v.corePercent}%`)
    .join(', ');

/** Phases during which the rest of the machine used more than a quarter of a core. */
export function othersBusy(r: BenchReport): string[] {
  const x = r.results;
  const phases: [string, Record<string, { corePercent: number }> | undefined][] = [
    ...(x.influxDirect?.runs ?? []).map((run): [string, Record<string, { corePercent: number }>] => [`influx-direct c=${run.concurrency}`, run.cpu]),
    ...(x.mqttCeiling ?? []).map((c): [string, Record<string, { corePercent: number }>] => [`mqtt-ceiling ${c.persistence}`, c.cpu]),
    ['ingest', x.ingest?.cpu],
    ['alarm latency', x.alarms?.load.cpu],
  ];
  return phases.flatMap(([name, cpu]) => {
    const others = cpu?.others?.corePercent ?? 0;
    return others > 25 ? [`${name}: ${others}% of a core`] : [];
  });
}

function loadDetails(l: LoadRunResult, log: (line: string) => void): void {
  log(`   broker acknowledged it at ${n(l.publishReadingsPerSecond)} readings/s (${n(l.publishMs)} ms), then ${n(l.drainMs)} ms until InfluxDB had it all`);
  log(`   queued: up to ${n(l.maxBrokerBacklogReadings)} readings in the broker, ${n(l.maxBufferedPoints)} points in cloud-sync's buffer; hub heap + buffers up to ${n(l.peakHeapMiB)} MiB`);
  log(`   hub event loop delay p50 ${ms(l.eventLoopDelayMs.p50)}, p99 ${ms(l.eventLoopDelayMs.p99)}, max ${ms(l.eventLoopDelayMs.max)}; CPU ${cpu(l.cpu)}`);
}

export function printReport(r: BenchReport, log: (line: string) => void = console.log): void {
  const { run, results: x, targets } = r;
  log('');
  log(`cosafe bench  ${run.date}`);
  log(`  commit ${run.commit}${run.dirty ? ' (dirty)' : ''}, node ${run.node}, ${run.cpuCount} x ${run.cpuModel}`);
  log('  CPU: % of one core; main = this process (the writer in 1, broker + subscriber in 2, the whole hub in 3-4), others = the rest of the machine');
  if (x.influxDirect) {
    log('');
    log('1. influx-direct: line protocol POSTed straight to InfluxDB /write');
    for (const run of x.influxDirect.runs) {
      log(`   ${run.concurrency} request(s) in flight: ${n(run.pointsPerSecond)} points/s  (${n(run.pointsCounted)} counted of ${n(run.pointsSent)} sent, ${n(run.ms)} ms${run.stoppedEarly ? ', stopped at the time limit' : ''}; CPU ${cpu(run.cpu)})`);
    }
    log(`   best: ${n(x.influxDirect.best.pointsPerSecond)} points/s with ${x.influxDirect.best.concurrency} in flight`);
  }
  if (x.mqttCeiling) {
    log('');
    log('2. mqtt-ceiling: publishers -> hub broker -> subscriber (persistent session, like cloud-sync) that only counts');
    for (const m of x.mqttCeiling) {
      log(`   ${m.persistence} persistence: ${n(m.readingsPerSecond)} readings/s first to last message  (${n(m.readingsPerSecondFromFirstPublish)}/s from the first publish)`);
      log(`     ${n(m.readingsReceived)} received of ${n(m.readingsSent)} sent, ${m.duplicateBatches} duplicate batches, ${n(m.ms)} ms; CPU ${cpu(m.cpu)}`);
    }
  }
  if (x.ingest) {
    const i = x.ingest;
    log('');
    log('3. ingest: publishers -> broker -> cloud-sync -> InfluxDB (embedded stack), as fast as the broker acknowledges');
    log(`   ${n(i.readingsPerSecond)} readings/s first publish to all counted in InfluxDB   target >= ${n(targets.ingestReadingsPerSecond)}: ${x.targetsMet?.ingest ? 'met' : 'NOT met'}`);
    log(`   sent ${n(i.readingsSent)}, counted ${n(i.readingsCounted)}, lost ${n(i.lost)}`);
    if (x.ratios) log(`   ingest / mqtt-ceiling (disk) = ${x.ratios.ingestToMqttCeiling.toFixed(3)}, ingest / influx-direct = ${x.ratios.ingestToInfluxDirect.toFixed(3)}`);
    loadDetails(i, log);
    log(`   alarms sent during it (${i.alarms.count}, one at a time): p50 ${ms(i.alarms.p50)}, max ${ms(i.alarms.max)} (smoke detector -> event out of the broker: max ${ms(i.alarms.edge.max)})`);
  }
  if (x.alarms) {
    const a = x.alarms;
    log('');
    log(`4. alarm latency: smoke detector publish -> gateway -> broker -> cloud-sync -> signed webhook received`);
    log(`   under a steady ${n(a.load.targetReadingsPerSecond)} readings/s (${a.underLoad.count} alarms): p50 ${ms(a.underLoad.p50)}, p99 ${ms(a.underLoad.p99)}, max ${ms(a.underLoad.max)}   target p99 < ${targets.alarmP99Ms} ms: ${x.targetsMet?.alarmP99 ? 'met' : 'NOT met'}`);
    log(`     of which smoke detector -> event out of the broker: p50 ${ms(a.underLoad.edge.p50)}, p99 ${ms(a.underLoad.edge.p99)}, max ${ms(a.underLoad.edge.max)}; then -> webhook: p50 ${ms(a.underLoad.hub.p50)}, p99 ${ms(a.underLoad.hub.p99)}, max ${ms(a.underLoad.hub.max)}`);
    log(`   idle (${a.idle.count}): p50 ${ms(a.idle.p50)}, p99 ${ms(a.idle.p99)}, max ${ms(a.idle.max)}`);
    log(`   the load: ${n(a.load.readingsPerSecond)} readings/s into InfluxDB, sent ${n(a.load.readingsSent)}, counted ${n(a.load.readingsCounted)}, lost ${n(a.load.lost)}`);
    loadDetails(a.load, log);
    const all = [a.idle, a.underLoad, x.ingest?.alarms].filter((s) => s !== undefined);
    log(`   alarms delivered ${all.reduce((k, s) => k + s.delivered, 0)} of ${all.reduce((k, s) => k + s.count, 0)} (late ${all.reduce((k, s) => k + s.late, 0)}, missing ${a.missing}); smoke readings ${a.smokeReadings.counted}/${a.smokeReadings.published}, events ${a.events.counted}/${a.events.expected} in InfluxDB`);
  }
  if (x.backlog) {
    const b = x.backlog;
    log('');
    log(`5. backlog drain: ${n(Number(b.backlog_readings))} readings buffered during an outage, drained while live ingest continues at ${n(Number(b.live_rate_target_readings_per_s))} readings/s`);
    for (const [k, v] of Object.entries(b)) if (!['backlog_readings', 'live_rate_target_readings_per_s'].includes(k)) log(`   ${k}: ${typeof v === 'number' ? n(v) : v}`);
  }
  if (r.disturbed.length) {
    log('');
    log(`WARNING: other processes on this machine were busy during the run (${r.disturbed.join(', ')}); on ${run.cpuCount} cores the figures are lower than this code alone would give.`);
  }
  log('');
  log(r.ok ? `ok (${(r.durationMs / 1000).toFixed(1)} s)` : `FAILED: ${r.problems.join('; ')}`);
}
