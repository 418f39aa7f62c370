import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startInfluxDB, type InfluxServer } from '../tests/helpers/influxdb.js';
import { summarize } from './alarm-probe.js';
import { clusterEmbeddedIdentities, runClusterPhase, type ClusterParams } from './cluster-phase.js';
import { LoginFleet } from './fleet.js';
import { runFleetDevices } from './fleet-phase.js';
import { createDatabase, runInfluxDirect, type InfluxDirectParams } from './influx-direct.js';
import { alarmsWhile, loadIdentities, PUBLISHERS, READINGS_PER_BATCH, readyForAlarms, runLoad, watchHub, type Ctx } from './phases.js';
import type { PublisherProcess } from './publishers.js';
import { RemoteProbe } from './remote-probe.js';
import { othersBusy, printReport, saveReport, type BenchReport } from './report.js';
import { ADMIN, DEVICE, GATEWAY, SITE, SMOKE, Stack } from './stack-processes.js';
import { CpuMeter, childPidsNamed, runInfo } from './system.js';
import { sleep } from './wait.js';

/**
 * `npm run bench`: the alarm lane under load, on the machine it runs on, in
 * one run, against the figures of issue 10. The system runs as a user runs it:
 * `cosafe hub` and `cosafe gateway` are processes of their own, influxd too;
 * the devices, the batched gateways and the fire department are the bench's.
 *
 *   1. influx-direct   InfluxDB alone: what /write takes (the ratio for ingest).
 *   2. devices         1,000 MQTT devices, each with its own credential and
 *                      connection, through the gateway's MQTT adapter: the fleet's
 *                      logins (cold and warm); one reading a second each with smoke
 *                      alarms meanwhile, one at a time (device publish -> webhook
 *                      received); then every device as fast as its PUBACKs come
 *                      back: readings/s stored, CPU per reading, peak RSS.
 *   3. burst           1,000,000 readings from batched gateways as fast as the hub
 *                      takes them: the ingest capacity, the hub's RSS and event loop,
 *                      alarms meanwhile, every reading counted back from InfluxDB.
 *   4. steady          80 % of that capacity, paced; alarms meanwhile.
 *   5. overload        twice the capacity for 10 s (the excess waits at the gateways);
 *                      alarms meanwhile: the worst latency, and every alarm delivered.
 *   6. cluster         the same batched load and alarms through the embedded hub,
 *                      then one and two `cosafe broker` of a cluster on a real
 *                      redis-server (appendfsync always) with `cosafe cloud-sync`:
 *                      readings/s stored, alarm latency, CPU per 100,000 readings
 *                      per process, Redis' CPU (cluster-phase.ts).
 *
 * Figures are printed and saved as JSON in bench/results with the commit and
 * the machine. On a shared machine they are noisy: the report says how busy
 * the rest of the machine was during each phase.
 */
const USAGE = `npm run bench [-- options]: every phase (about three minutes on two cores), figures printed and saved in bench/results

  --only devices    InfluxDB alone and the devices phase only (about a minute)
  --only cluster    InfluxDB alone and the cluster phase only (about a minute and a half)
  --cpu-prof DIR    the hub and the gateway write a V8 CPU profile per thread in DIR when they stop
  --help            this text`;
let parsed;
try {
  parsed = parseArgs({
    options: {
      // Each of the hub and the gateway writes a V8 CPU profile (.cpuprofile, open it in Chrome's DevTools or speedscope) when it stops.
      'cpu-prof': { type: 'string' },
      // `devices`: the run ends after the devices phase (a minute, for profiling the single-reading path).
      // `cluster`: InfluxDB alone, idle alarms, then the cluster phase only (its embedded baseline included).
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  // An unknown option: say so and what there is, not a stack trace.
  console.error(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (parsed.help) {
  console.log(USAGE);
  process.exit(0);
}
const args = parsed;
const ONLY = ['devices', 'cluster'] as const;
if (args.only !== undefined && !(ONLY as readonly string[]).includes(args.only)) throw new Error(`--only takes ${ONLY.map((o) => `"${o}"`).join(' or ')}, not "${args.only}"`);
const only = args.only as (typeof ONLY)[number] | undefined;
const startedAt = performance.now();
const WATCHDOG_MS = 600_000;
const P = {
  influxDirect: { points: 500_000, pointsPerRequest: 5000, publishers: PUBLISHERS, readingsPerBatch: READINGS_PER_BATCH, concurrencies: [1, 2], maxMs: 20_000 } satisfies InfluxDirectParams,
  devices: { count: 1000, processes: 2, everyMs: 1000, warmupMs: 3000, alarms: 100, maxMs: 40_000, gapMs: 100, timeoutMs: 5000, flood: { perDevice: 100, window: 20, countTimeoutMs: 120_000 } },
  idleAlarms: 20,
  burst: { readings: 1_000_000, alarmGapMs: 50, alarmTimeoutMs: 30_000, maxAlarms: 300 },
  steady: { share: 0.8, alarms: 100, maxMs: 40_000, gapMs: 60, timeoutMs: 5000 },
  overload: { factor: 2, seconds: 10, alarmGapMs: 50, alarmTimeoutMs: 30_000 },
  // 300,000 readings a variant: ~10 s each at the embedded hub's rate, long enough for ~100 alarms meanwhile, short enough for three variants in ~2 minutes.
  cluster: { readings: 300_000, idleAlarms: 20, alarmGapMs: 50, alarmTimeoutMs: 10_000, maxAlarms: 300, giveUpAfterLate: 3, countTimeoutMs: 120_000, appendfsync: 'always' } satisfies ClusterParams,
  countTimeoutMs: 120_000,
};
const targets = {
  devices: { p99Ms: 10, maxMs: 20 },
  fleet: { storedPerSecond: 15_000, cpuSecondsPer100k: 10, peakRssMiB: 200, connectMs: 2000 },
  steady: { p99Ms: 50, maxMs: 100 },
  overload: { maxMs: 250 },
  hubEventLoopP99Ms: 20,
  hubRssMiB: 256,
  ingestToInfluxDirect: 0.5,
};

const log = (line: string) => console.log(line);
const problems: string[] = [];
const info = runInfo();
const report: BenchReport = { bench: 'cosafe', schema: 2, run: info, params: { ...P, ...(args.only ? { only: args.only } : {}) }, targets, results: {}, phases: {}, disturbed: [], problems, ok: false, durationMs: 0 };

let influx: InfluxServer | undefined;
let stack: Stack | undefined;
let fleet: LoginFleet | undefined;
let worker: PublisherProcess | undefined;
/** The smoke detector, its observers and the fire department's receiver, in a process of their own (remote-probe.ts). */
let probe: RemoteProbe | undefined;
/** The cluster phase's processes of the variant running, stopped if the run is cut short. */
let clusterRunning: (() => Promise<void>) | undefined;

async function cleanup(): Promise<void> {
  await worker?.kill(1000).catch(() => {});
  await fleet?.kill().catch(() => {});
  await clusterRunning?.().catch(() => {});
  await probe?.stop().catch(() => {});
  await stack?.stop().catch(() => {});
  await probe?.close().catch(() => {});
  await influx?.stop().catch(() => {});
}

let finishing: Promise<void> | undefined;
function finish(problem?: string): Promise<void> {
  if (problem) problems.push(problem);
  finishing ??= (async () => {
    clearTimeout(watchdog);
    await cleanup();
    report.ok = problems.length === 0;
    report.disturbed = othersBusy(report);
    report.durationMs = Math.round(performance.now() - startedAt);
    printReport(report, log);
    log(`saved ${saveReport(report)} and bench/results/latest.json`);
    process.exitCode = report.ok ? 0 : 1;
  })();
  return finishing;
}
const watchdog = setTimeout(() => void finish(`still running after ${WATCHDOG_MS / 1000} s; stopped`).finally(() => process.exit(2)), WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void finish(`interrupted by ${signal}`).finally(() => process.exit(130)));
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.once(event, (err: unknown) => void finish(`${event}: ${(err as Error)?.stack ?? String(err)}`).finally(() => process.exit(1)));
}

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    const end = process.hrtime.bigint();
    report.phases[name] = { ms: Number((end - start) / 1_000_000n), monotonicUs: [Number(start / 1000n), Number(end / 1000n)] };
  }
}

try {
  log(`cosafe bench: ${info.cpuCount} x ${info.cpuModel}, node ${info.node}, commit ${info.shortCommit}${info.dirty ? ' (dirty)' : ''}`);
  influx = await startInfluxDB();
  const influxPid = childPidsNamed('influxd')[0];
  const server = influx;

  log(`1/6 influx-direct: ${P.influxDirect.points.toLocaleString('en-US')} points straight to InfluxDB ...`);
  const cpuDirect = new CpuMeter(() => ({ bench: process.pid, influxd: influxPid }));
  const direct = await timed('influx-direct', () => runInfluxDirect(server, P.influxDirect, cpuDirect));
  report.results.influxDirect = direct;
  log(`    ${direct.best.pointsPerSecond.toLocaleString('en-US')} points/s`);

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const launched = await RemoteProbe.launch(secret);
  probe = launched.probe;
  const fireDepartmentUrl = launched.url;
  const database = 'bench';
  await createDatabase(server, database);
  const prefixes = { burst: 'burst-', steady: 'steady-', overload: 'over-' };
  stack = await Stack.start({
    influxUrl: server.url,
    database,
    fireDepartmentUrl,
    fireDepartmentSecret: secret,
    devices: P.devices.count,
    ...(args['cpu-prof'] ? { cpuProfileDir: resolve(args['cpu-prof']) } : {}),
    identities: [
      { role: 'device', id: `${SITE}.${SMOKE}`, site: SITE, device: SMOKE },
      { role: 'service', id: 'bench-observer' },
      ...Array.from({ length: P.devices.count }, (_, i) => ({ role: 'device' as const, id: `${SITE}.${DEVICE(i)}`, site: SITE, device: DEVICE(i) })),
      ...Object.values(prefixes).flatMap((p) => loadIdentities(p)),
      ...clusterEmbeddedIdentities(),
    ],
  });
  const s = stack;
  const cpu = new CpuMeter(() => ({ hub: s.hub.pid, gateway: s.gateway.pid, influxd: influxPid, bench: process.pid, probe: probe?.pid, ...Object.fromEntries((fleet?.pids ?? []).map((pid, i) => [`devices${i}`, pid])), publishers: worker?.pid }));
  const p = probe;
  await p.start({
    brokerUrl: s.brokerUrl,
    site: SITE,
    device: SMOKE,
    gateway: GATEWAY,
    sensorLogin: s.login(`${SITE}.${SMOKE}`),
    observerLogin: s.login('bench-observer'),
    uplinkObserverLogin: s.login(ADMIN.id),
    gatewayHealth: { url: `${s.gateway.httpUrl}/health`, headers: s.gateway.authHeaders },
  });
  const ctx: Ctx = { stack: s, influx: server, database, probe: p, cpu, setWorker: (w) => (worker = w), log };
  await readyForAlarms(p, s.gateway);
  const idle = summarize(await alarmsWhile(p, { gapMs: 50, timeoutMs: 5000, max: P.idleAlarms, until: () => false }));
  report.results.idle = idle;
  log(`    idle alarms: p50 ${idle.p50} ms, p99 ${idle.p99} ms, max ${idle.max} ms`);

  if (only !== 'cluster') {
    log(`2/6 devices: ${P.devices.count.toLocaleString('en-US')} MQTT devices with their own logins through the gateway: logins, a reading a second each with ${P.devices.alarms} alarms meanwhile, then as fast as they can ...`);
    fleet = new LoginFleet({
      host: '127.0.0.1',
      port: Number(new URL(s.brokerUrl).port),
      site: SITE,
      logins: Array.from({ length: P.devices.count }, (_, i) => ({ device: DEVICE(i), ...s.login(`${SITE}.${DEVICE(i)}`) })),
      processes: P.devices.processes,
    });
    const f = fleet;
    const devices = await timed('devices', () => runFleetDevices(ctx, f, P.devices));
    report.results.devices = devices;
    await fleet.kill();
    fleet = undefined;
    const fl = devices.flood;
    if (fl.lost !== 0) problems.push(`devices: ${fl.acked} readings acknowledged, ${fl.counted} counted in InfluxDB`);
    log(`    ${fl.storedPerSecond.toLocaleString('en-US')} readings/s stored, ${fl.lost} lost, ${fl.cpuSecondsPer100kReadings} CPU s per 100,000 readings; fleet reconnected in ${devices.connectWarm.ms} ms`);
  }

  if (only === undefined) {
    log(`3/6 burst: ${P.burst.readings.toLocaleString('en-US')} readings as fast as the hub takes them; alarms meanwhile ...`);
    let burstOver = false;
    const burstAlarms: Awaited<ReturnType<typeof alarmsWhile>>[] = [];
    await p.loopDelay();
    const burst = await timed('burst', () =>
      watchHub(ctx, () =>
        runLoad(ctx, { sitePrefix: prefixes.burst, batchesPerPublisher: P.burst.readings / PUBLISHERS / READINGS_PER_BATCH, untilStop: false, countTimeoutMs: P.countTimeoutMs }, async (w) => {
          await w.waitFor('started', 10_000);
          burstAlarms.push(await alarmsWhile(p, { gapMs: P.burst.alarmGapMs, timeoutMs: P.burst.alarmTimeoutMs, max: P.burst.maxAlarms, until: () => burstOver || w.fixedDoneAt !== undefined }));
        }).finally(() => (burstOver = true)),
      ),
    );
    const capacity = burst.result.readingsPerSecond;
    const burstLoop = await p.loopDelay();
    report.results.burst = { ...burst.result, alarms: summarize(burstAlarms.flat()), hub: burst.hub, probeLoopDelayMs: burstLoop };
    log(`    the alarm probe's own event loop meanwhile: p99 ${burstLoop.p99Ms} ms, max ${burstLoop.maxMs} ms`);
    log(`    capacity ${capacity.toLocaleString('en-US')} readings/s, ${burst.result.lost} lost; hub RSS up to ${burst.hub.rssMiB.max} MiB, event loop p99 ${burst.hub.eventLoopDelayMs.p99} ms`);

    const steadyRate = Math.round(capacity * P.steady.share);
    log(`4/6 steady: ${steadyRate.toLocaleString('en-US')} readings/s (${P.steady.share * 100} % of capacity); ${P.steady.alarms} alarms meanwhile ...`);
    const steadySamples: Awaited<ReturnType<typeof alarmsWhile>> = [];
    await p.loopDelay();
    const steady = await timed('steady', () =>
      watchHub(ctx, () =>
        runLoad(ctx, { sitePrefix: prefixes.steady, batchesPerPublisher: 0, readingsPerSecond: steadyRate, untilStop: true, countTimeoutMs: P.countTimeoutMs }, async () => {
          await sleep(1000);
          steadySamples.push(...(await alarmsWhile(p, { gapMs: P.steady.gapMs, timeoutMs: P.steady.timeoutMs, max: P.steady.alarms, maxMs: P.steady.maxMs, until: () => false })));
        }),
      ),
    );
    const steadyLoop = await p.loopDelay();
    report.results.steady = { ...steady.result, targetReadingsPerSecond: steadyRate, alarms: summarize(steadySamples), hub: steady.hub, probeLoopDelayMs: steadyLoop };
    log(`    the alarm probe's own event loop meanwhile: p99 ${steadyLoop.p99Ms} ms, max ${steadyLoop.maxMs} ms`);
    log(`    p50 ${report.results.steady.alarms.p50} ms, p99 ${report.results.steady.alarms.p99} ms, max ${report.results.steady.alarms.max} ms`);

    const overRate = Math.round(capacity * P.overload.factor);
    log(`5/6 overload: ${overRate.toLocaleString('en-US')} readings/s offered for ${P.overload.seconds} s; alarms meanwhile ...`);
    const overSamples: Awaited<ReturnType<typeof alarmsWhile>> = [];
    await p.loopDelay();
    const overload = await timed('overload', () =>
      watchHub(ctx, () =>
        runLoad(ctx, { sitePrefix: prefixes.overload, batchesPerPublisher: Math.ceil((overRate * P.overload.seconds) / PUBLISHERS / READINGS_PER_BATCH), readingsPerSecond: overRate, untilStop: false, countTimeoutMs: P.countTimeoutMs }, async (w) => {
          const end = Date.now() + P.overload.seconds * 1000;
          overSamples.push(...(await alarmsWhile(p, { gapMs: P.overload.alarmGapMs, timeoutMs: P.overload.alarmTimeoutMs, max: 1000, until: () => Date.now() >= end || w.fixedDoneAt !== undefined })));
        }),
      ),
    );
    const overloadLoop = await p.loopDelay();
    report.results.overload = { ...overload.result, offeredReadingsPerSecond: overRate, alarms: summarize(overSamples), hub: overload.hub, probeLoopDelayMs: overloadLoop };
    log(`    the alarm probe's own event loop meanwhile: p99 ${overloadLoop.p99Ms} ms, max ${overloadLoop.maxMs} ms`);
    report.results.missingAlarms = await p.missing(10_000);
    report.results.hubPeakRssMiB = s.hub.memory().peakMiB;
    report.results.ratios = { ingestToInfluxDirect: Math.round((capacity / direct.best.pointsPerSecond) * 1000) / 1000 };

    for (const [name, r] of Object.entries({ burst: report.results.burst, steady: report.results.steady, overload: report.results.overload })) {
      if (r.lost !== 0) problems.push(`${name}: ${r.readingsSent} readings sent, ${r.readingsCounted} counted in InfluxDB`);
    }
    if (report.results.missingAlarms) problems.push(`${report.results.missingAlarms} alarms never reached the fire department`);
  }

  if (only === undefined || only === 'cluster') {
    log(`6/6 cluster: the embedded hub, then one and two brokers of a cluster on Redis (appendfsync ${P.cluster.appendfsync}) with cloud-sync; ${P.cluster.readings.toLocaleString('en-US')} readings each, alarms meanwhile ...`);
    const cluster = await timed('cluster', () =>
      runClusterPhase(ctx, P.cluster, {
        influxPid,
        fireDepartmentUrl,
        fireDepartmentSecret: secret,
        hooks: { setRunning: (stop) => (clusterRunning = stop) },
        // The embedded hub and its gateway idle on with 1,000 silent devices: stopped, so the cluster's processes have the cores.
        beforeCluster: async () => {
          await p.stop();
          await s.stop();
          stack = undefined;
        },
      }),
    );
    report.results.cluster = cluster;
    for (const r of [cluster.embedded, ...cluster.variants]) {
      if (r.load.lost !== 0) problems.push(`cluster, ${r.name}: ${r.load.readingsSent} readings sent, ${r.load.readingsCounted} counted in InfluxDB`);
      if (r.missingAlarms) problems.push(`cluster, ${r.name}: ${r.missingAlarms} alarms never reached the fire department`);
    }
  }
  const rejected = await p.rejected();
  report.results.webhooksRejected = rejected;
  if (rejected) problems.push(`${rejected} webhooks failed signature verification`);
} catch (err) {
  problems.push(`error: ${(err as Error).stack ?? String(err)}`);
}
await finish();
