import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatencySummary } from './alarm-probe.js';
import type { ClusterResult, ClusterRun } from './cluster-phase.js';
import type { DevicesResult } from './fleet-phase.js';
import type { InfluxDirectResult } from './influx-direct.js';
import type { HubDuring, LoadResult } from './phases.js';
import type { ProbeLoopDelay } from './remote-probe.js';
import type { RunInfo } from './system.js';

type Cpu = Record<string, { cpuMs: number; corePercent: number }>;

export interface BenchReport {
  bench: 'cosafe';
  schema: 2;
  run: RunInfo;
  params: Record<string, unknown>;
  targets: {
    devices: { p99Ms: number; maxMs: number };
    fleet: { storedPerSecond: number; cpuSecondsPer100k: number; peakRssMiB: number; connectMs: number };
    steady: { p99Ms: number; maxMs: number };
    overload: { maxMs: number };
    hubEventLoopP99Ms: number;
    hubRssMiB: number;
    ingestToInfluxDirect: number;
  };
  results: {
    influxDirect?: InfluxDirectResult;
    idle?: LatencySummary;
    devices?: DevicesResult;
    /** probeLoopDelayMs: the alarm probe's own event loop over the phase (its process): how well its alarms could be timed. */
    burst?: LoadResult & { alarms: LatencySummary; hub: HubDuring; probeLoopDelayMs?: ProbeLoopDelay };
    steady?: LoadResult & { targetReadingsPerSecond: number; alarms: LatencySummary; hub: HubDuring; probeLoopDelayMs?: ProbeLoopDelay };
    overload?: LoadResult & { offeredReadingsPerSecond: number; alarms: LatencySummary; hub: HubDuring; probeLoopDelayMs?: ProbeLoopDelay };
    missingAlarms?: number;
    webhooksRejected?: number;
    hubPeakRssMiB?: number;
    ratios?: { ingestToInfluxDirect: number };
    cluster?: ClusterResult;
  };
  phases: Record<string, { ms: number; monotonicUs: [number, number] }>;
  /** Phases during which other processes took CPU from the bench (see `cpu.others` in each phase). */
  disturbed: string[];
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
const cpu = (c: Cpu) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${v.corePercent}%`)
    .join(', ');
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

/** Phases during which the rest of the machine used more than a quarter of a core. */
export function othersBusy(r: BenchReport): string[] {
  const x = r.results;
  const phases: [string, Cpu | undefined][] = [
    ...(x.influxDirect?.runs ?? []).map((run): [string, Cpu] => [`influx-direct c=${run.concurrency}`, run.cpu]),
    ['devices', x.devices?.paced.hub.cpu],
    ['devices flood', x.devices?.flood.cpu],
    ['burst', x.burst?.hub.cpu],
    ['steady', x.steady?.hub.cpu],
    ['overload', x.overload?.hub.cpu],
    ...(x.cluster ? [x.cluster.embedded, ...x.cluster.variants] : []).map((run): [string, Cpu] => [`cluster ${run.name}`, run.cpu]),
  ];
  return phases.flatMap(([name, c]) => {
    const others = c?.others?.corePercent ?? 0;
    return others > 25 ? [`${name}: ${others}% of a core`] : [];
  });
}

function latency(l: LatencySummary): string {
  return `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)} (${l.delivered}/${l.count} delivered; edge part p99 ${ms(l.edge.p99)}${l.uplink ? ` (its first broker hop p99 ${ms(l.uplink.p99)})` : ''}, hub part p99 ${ms(l.hub.p99)})`;
}

function hub(h: HubDuring): string {
  return `hub event loop delay p50 ${ms(h.eventLoopDelayMs.p50)}, p99 ${ms(h.eventLoopDelayMs.p99)}, max ${ms(h.eventLoopDelayMs.max)}; hub RSS ${h.rssMiB.start} -> max ${h.rssMiB.max} MiB; CPU ${cpu(h.cpu)}`;
}

function load(l: LoadResult): string {
  return `${n(l.readingsPerSecond)} readings/s into InfluxDB (${n(l.readingsSent)} sent, ${n(l.readingsCounted)} counted, ${n(l.lost)} lost; broker took them in ${n(l.publishMs)} ms; broker backlog up to ${n(l.maxBrokerBacklogReadings)} readings)`;
}

export function printReport(r: BenchReport, log: (line: string) => void = console.log): void {
  const { run, results: x, targets: t } = r;
  log('');
  log(`cosafe bench  ${run.date}`);
  log(`  commit ${run.commit}${run.dirty ? ' (dirty)' : ''}, node ${run.node}, ${run.cpuCount} x ${run.cpuModel}`);
  log('  alarm latency: smoke detector publish -> gateway -> hub broker -> cloud-sync -> signed webhook received (edge part: until the event leaves the broker)');
  log('  CPU: % of one core per process; others = the rest of the machine');
  if (x.influxDirect) {
    log('');
    log('1. InfluxDB alone (line protocol straight to /write)');
    for (const d of x.influxDirect.runs) log(`   ${d.concurrency} in flight: ${n(d.pointsPerSecond)} points/s; CPU ${cpu(d.cpu)}`);
  }
  if (x.idle) log(`   idle alarms: ${latency(x.idle)}`);
  if (x.devices) {
    const { connectCold: c, connectWarm: w, paced: d, flood: f } = x.devices;
    const refused = (r: typeof c) => (Object.keys(r.refused).length ? `, refused ${JSON.stringify(r.refused)}` : '');
    log('');
    log(`2. devices: 1,000 MQTT devices, each its own login and connection, through the gateway's adapter`);
    log(`   logins: ${n(c.connected)} connected in ${n(c.ms)} ms cold (nothing remembered, as after a hub restart)${refused(c)}, ${n(w.ms)} ms again at once${refused(w)}   target <= ${t.fleet.connectMs} ms: ${verdict(c.ms <= t.fleet.connectMs && w.ms <= t.fleet.connectMs)}; CPU cold ${cpu(c.cpu)}`);
    log(`   a reading a second each: ${n(d.published)} published, ${n(d.gatewayReadings)} taken by the gateway`);
    log(`   alarms: ${latency(d.alarms)}   target p99 <= ${t.devices.p99Ms} ms, max <= ${t.devices.maxMs} ms: ${verdict(d.alarms.p99 <= t.devices.p99Ms && d.alarms.max <= t.devices.maxMs)}`);
    log(`   ${hub(d.hub)}`);
    log(`   as fast as PUBACKs come back: ${n(f.storedPerSecond)} readings/s stored (${n(f.acked)} acknowledged at ${n(f.ackedPerSecond)}/s, ${n(f.counted)} counted, ${n(f.lost)} lost)   target >= ${n(t.fleet.storedPerSecond)}/s, none lost: ${verdict(f.storedPerSecond >= t.fleet.storedPerSecond && f.lost === 0)}`);
    log(`   ${f.cpuSecondsPer100kReadings} CPU s per 100,000 readings (hub and gateway)   target <= ${t.fleet.cpuSecondsPer100k}: ${verdict(f.cpuSecondsPer100kReadings <= t.fleet.cpuSecondsPer100k)}; peak RSS hub ${f.peakRssMiB.hub} MiB, gateway ${f.peakRssMiB.gateway} MiB   target <= ${t.fleet.peakRssMiB} MiB each: ${verdict(Math.max(f.peakRssMiB.hub, f.peakRssMiB.gateway) <= t.fleet.peakRssMiB)}`);
    log(`   CPU ${cpu(f.cpu)}`);
  }
  if (x.burst) {
    const b = x.burst;
    log('');
    log(`3. burst: ${load(b)}`);
    if (x.ratios) log(`   ingest / InfluxDB alone = ${x.ratios.ingestToInfluxDirect.toFixed(3)}   target >= ${t.ingestToInfluxDirect}: ${verdict(x.ratios.ingestToInfluxDirect >= t.ingestToInfluxDirect)}`);
    log(`   alarms: ${latency(b.alarms)}`);
    log(`   ${hub(b.hub)}`);
    log(`   hub RSS through the burst: max ${b.hub.rssMiB.max} MiB   target <= ${t.hubRssMiB} MiB: ${verdict(b.hub.rssMiB.max <= t.hubRssMiB)}`);
    log(`   hub event loop delay p99 under full load: ${ms(b.hub.eventLoopDelayMs.p99)}   target <= ${t.hubEventLoopP99Ms} ms: ${verdict(b.hub.eventLoopDelayMs.p99 <= t.hubEventLoopP99Ms)}`);
  }
  if (x.steady) {
    const s = x.steady;
    log('');
    log(`4. steady at ${n(s.targetReadingsPerSecond)} readings/s: ${load(s)}`);
    log(`   alarms: ${latency(s.alarms)}   target p99 <= ${t.steady.p99Ms} ms, max <= ${t.steady.maxMs} ms: ${verdict(s.alarms.p99 <= t.steady.p99Ms && s.alarms.max <= t.steady.maxMs)}`);
    log(`   ${hub(s.hub)}`);
  }
  if (x.overload) {
    const o = x.overload;
    log('');
    log(`5. overload, ${n(o.offeredReadingsPerSecond)} readings/s offered: ${load(o)}`);
    log(`   alarms: ${latency(o.alarms)}   target max <= ${t.overload.maxMs} ms, all delivered: ${verdict(o.alarms.max <= t.overload.maxMs && o.alarms.delivered === o.alarms.count)}`);
    log(`   ${hub(o.hub)}`);
  }
  if (x.cluster) printCluster(x.cluster, log);
  if (x.missingAlarms !== undefined) log(`\n   alarms never delivered: ${x.missingAlarms}; webhooks that failed verification: ${x.webhooksRejected ?? 0}; hub peak RSS over the run: ${x.hubPeakRssMiB ?? '?'} MiB`);
  if (r.disturbed.length) {
    log('');
    log(`WARNING: other processes on this machine were busy during the run (${r.disturbed.join(', ')}); on ${run.cpuCount} cores the figures are worse than this code alone would give.`);
  }
  log('');
  log(r.ok ? `ok (${(r.durationMs / 1000).toFixed(1)} s)` : `FAILED: ${r.problems.join('; ')}`);
}

function clusterRun(r: ClusterRun, log: (line: string) => void): void {
  const per = Object.entries(r.cpuSecondsPer100k)
    .filter(([name]) => name !== 'others' && name !== 'system')
    .map(([name, v]) => `${name} ${v}`)
    .join(', ');
  log(`   ${r.name} (${r.brokers} broker${r.brokers > 1 ? 's' : ''}, ${r.workers} cloud-sync): ${load(r.load)}`);
  log(`     idle alarms: p50 ${ms(r.idle.p50)}, p99 ${ms(r.idle.p99)}, max ${ms(r.idle.max)}; under load: ${latency(r.alarms)}`);
  log(`     CPU s per 100,000 readings: ${r.cpuSecondsPer100k.system} for the system (${per}); CPU ${cpu(r.cpu)}`);
  if (r.redis) log(`     Redis: ${n(r.redis.commands)} commands (${r.redis.commandsPerBatch} per batch of readings), ${r.redis.usedMemoryMiB} MiB used, append-only file ${r.redis.aofMiB} MiB`);
  log(`     peak RSS: ${Object.entries(r.peakRssMiB).map(([name, v]) => `${name} ${v} MiB`).join(', ')}`);
}

function printCluster(c: ClusterResult, log: (line: string) => void): void {
  log('');
  log(`6. cluster: the same batched load through the embedded hub and through a cluster on one redis-server (appendonly yes, appendfsync ${c.appendfsync}); alarms through a gateway on the last broker, cloud-sync on the first`);
  clusterRun(c.embedded, log);
  for (const v of c.variants) {
    clusterRun(v, log);
    const r = c.ratios[v.name];
    const f = (x: number | undefined) => (x === undefined ? '?' : x.toFixed(2));
    if (r) log(`     beside the embedded hub: ingest x ${f(r.ingest)}, alarm p99 x ${f(r.alarmP99)}, CPU per reading x ${f(r.cpuPer100k)}`);
  }
}
