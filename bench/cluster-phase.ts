import type { Identity } from '../broker/auth/identity.js';
import { startRedis, type RedisServer } from '../tests/helpers/redis.js';
import { summarize, type LatencySummary } from './alarm-probe.js';
import { ClusterStack } from './cluster-stack.js';
import { partitionOf } from '../cloud-sync/partitions/partition.js';
import { cpuSecondsPer100k, lateStreak, ratio, readingsPerCore, sitesPerPartition } from './cluster-figures.js';
import { alarmsWhile, loadIdentities, peakRss, PUBLISHERS, READINGS_PER_BATCH, readyForAlarms, runLoad, watchHub, type Ctx, type HubDuring, type LoadResult } from './phases.js';
import type { PublisherProcess } from './publishers.js';
import { GATEWAY, SITE, SMOKE, type StackProcess } from './stack-processes.js';
import { CpuMeter, childPidsNamed } from './system.js';
import { loadSite } from './workload.js';

/**
 * Phase 6, `cluster` (issue 16): the same load and alarm probe as the other
 * phases, through
 *   - the embedded hub of this run (`cosafe hub`: broker and cloud-sync in one
 *     process, SQLite), the baseline;
 *   - one `cosafe broker` with `broker.cluster` on a real redis-server, and one
 *     `cosafe cloud-sync`;
 *   - two brokers of that cluster, the publishers split across them, cloud-sync
 *     on the first and the probe's gateway on the second (its alarms cross
 *     brokers through Redis).
 * Redis runs with `appendonly yes`, `appendfsync always`: what the README
 * recommends for nothing lost when the machine itself fails, so the figures are
 * those of the setting a user should run.
 */
export interface ClusterParams {
  /** Per variant, as fast as the brokers take them (PUBLISHERS gateways of READINGS_PER_BATCH). */
  readings: number;
  idleAlarms: number;
  alarmGapMs: number;
  alarmTimeoutMs: number;
  maxAlarms: number;
  /** Alarms late in a row after which a variant sends no more (its path delivers none; the samples say so). */
  giveUpAfterLate: number;
  countTimeoutMs: number;
  appendfsync: 'always' | 'everysec';
}

export interface ClusterVariant {
  name: string;
  brokers: number;
  /** cloud-sync processes; more than one: workers with `cloudSync.partitions`. */
  workers: number;
  /** `cloudSync.partitions.count` of the workers (with one worker: none, the sessions of one cloud-sync as before). */
  partitions?: number;
}

/**
 * The variants, in the order they run. Two workers take 2 partitions, one
 * each: the bench's 10 publishers' sites fall 5 and 5 into them (FNV-1a,
 * checked before the run with sitesPerPartition), so each worker carries
 * half the telemetry whichever partition it gets; with 4 the sites fall
 * 3/3/2/2 and a worker's share would depend on which two partitions it won
 * (6 or 4 of 10). And each event goes into every partition's alarm session:
 * 2 copies per event, the least a split can cost the alarm lane.
 */
export const CLUSTER_VARIANTS: readonly ClusterVariant[] = [
  { name: 'one broker', brokers: 1, workers: 1 },
  { name: 'two brokers', brokers: 2, workers: 1 },
  { name: 'two brokers, two workers', brokers: 2, workers: 2, partitions: 2 },
];

type Cpu = Record<string, { cpuMs: number; corePercent: number }>;

export interface ClusterRun {
  name: string;
  brokers: number;
  workers: number;
  partitions?: number;
  /** Alarms with nothing else going on: the cost of the hops (Redis, a second broker) alone. */
  idle: LatencySummary;
  load: LoadResult;
  alarms: LatencySummary;
  /** Alarms sent during the variant and never delivered. */
  missingAlarms: number;
  /** Per process, and `system` (every process but the bench's own). */
  cpuSecondsPer100k: Record<string, number>;
  cpu: Cpu;
  /** cloud-sync's event loop and RSS (the hub's, embedded). */
  hub: HubDuring;
  peakRssMiB: Record<string, number>;
  /** Readings/s one core of the process would carry at this rate, were it the only limit. */
  readingsPerCore: Record<string, number | undefined>;
  redis?: { commands: number; commandsPerBatch: number; usedMemoryMiB: number; aofMiB: number };
}

export interface ClusterResult {
  appendfsync: ClusterParams['appendfsync'];
  embedded: ClusterRun;
  variants: ClusterRun[];
  /** Each variant beside the embedded hub of the same run. */
  ratios: Record<string, { ingest: number | undefined; alarmP99: number | undefined; cpuPer100k: number | undefined }>;
}

/** The hooks of the run: what is set running is stopped if the run is cut short. */
export interface ClusterHooks {
  setRunning(stop: (() => Promise<void>) | undefined): void;
}

/** Site prefixes of the phase's load (each variant counts its own readings in InfluxDB). */
export const CLUSTER_PREFIXES = { embedded: 'cl-emb-', variant: (i: number) => `cl-${i}-` };

/** The embedded variant's publishers log in to the run's hub: issue these with its other identities. */
export const clusterEmbeddedIdentities = (): Identity[] => loadIdentities(CLUSTER_PREFIXES.embedded);

/** The load of one variant, with the probe's alarms meanwhile; idle alarms before it. */
async function measure(ctx: Ctx, p: ClusterParams, sitePrefix: string, procs: Record<string, StackProcess>, redis?: RedisServer): Promise<Omit<ClusterRun, 'name' | 'brokers' | 'workers' | 'partitions'>> {
  const broken = () => lateStreak(ctx.probe.samples) >= p.giveUpAfterLate;
  const idleSamples = await alarmsWhile(ctx.probe, { gapMs: p.alarmGapMs, timeoutMs: p.alarmTimeoutMs, max: p.idleAlarms, until: broken });
  const redisBefore = redis ? await redisInfo(redis) : undefined;
  let over = false;
  const samples: Awaited<ReturnType<typeof alarmsWhile>> = [];
  const { result: watched, peak } = await peakRss(procs, () =>
    watchHub(ctx, () =>
      runLoad(ctx, { sitePrefix, batchesPerPublisher: p.readings / PUBLISHERS / READINGS_PER_BATCH, untilStop: false, countTimeoutMs: p.countTimeoutMs }, async (w) => {
        samples.push(...(await alarmsWhile(ctx.probe, { gapMs: p.alarmGapMs, timeoutMs: p.alarmTimeoutMs, max: p.maxAlarms, until: () => over || w.fixedDoneAt !== undefined || broken() })));
      }).finally(() => (over = true)),
      (r) => ({ publishers: r.publisherCpuMs }),
    ),
  );
  const load = watched.result;
  const cpu = watched.hub.cpu;
  const redisAfter = redis ? await redisInfo(redis) : undefined;
  // Stragglers get their time when they arrive (the samples are updated in place); what is still missing after the grace is lost.
  await ctx.probe.missing(10_000);
  const missingAlarms = [...idleSamples, ...samples].filter((s) => s.ms === undefined).length;
  const batches = load.readingsSent / READINGS_PER_BATCH;
  return {
    idle: summarize(idleSamples),
    load,
    alarms: summarize(samples),
    missingAlarms,
    cpuSecondsPer100k: cpuSecondsPer100k(cpu, load.readingsSent),
    cpu,
    hub: watched.hub,
    peakRssMiB: peak,
    readingsPerCore: Object.fromEntries(Object.entries(cpu).filter(([name]) => name !== 'others' && name !== 'bench').map(([name, c]) => [name, readingsPerCore(load.readingsPerSecond, c.corePercent)])),
    ...(redisBefore && redisAfter
      ? {
          redis: {
            commands: redisAfter.commands - redisBefore.commands,
            commandsPerBatch: Math.round(((redisAfter.commands - redisBefore.commands) / batches) * 10) / 10,
            usedMemoryMiB: redisAfter.usedMemoryMiB,
            aofMiB: redisAfter.aofMiB,
          },
        }
      : {}),
  };
}

/** Commands processed so far, memory and the append-only file's size, from INFO. */
async function redisInfo(redis: RedisServer): Promise<{ commands: number; usedMemoryMiB: number; aofMiB: number }> {
  const text = await redis.client.info();
  const field = (key: string) => Number(new RegExp(`^${key}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { commands: field('total_commands_processed'), usedMemoryMiB: mib(field('used_memory')), aofMiB: mib(field('aof_current_size')) };
}

/**
 * Runs the embedded variant on the run's stack (`ctx`), then `beforeCluster`
 * (the run stops its stack there, so its idle processes take no CPU from the
 * cluster's), then each cluster variant on a Redis of the phase's own.
 */
export async function runClusterPhase(
  ctx: Ctx,
  p: ClusterParams,
  o: {
    influxPid: number | undefined;
    fireDepartmentUrl: string;
    fireDepartmentSecret: string;
    hooks: ClusterHooks;
    beforeCluster: () => Promise<void>;
  },
): Promise<ClusterResult> {
  const { log } = ctx;
  log(`    embedded (cosafe hub): ${p.readings.toLocaleString('en-US')} readings, alarms meanwhile ...`);
  const embedded: ClusterRun = { name: 'embedded', brokers: 1, workers: 1, ...(await measure(ctx, p, CLUSTER_PREFIXES.embedded, { hub: ctx.stack.hub, gateway: ctx.stack.gateway })) };
  log(`      ${line(embedded)}`);
  await o.beforeCluster();

  const redis = await startRedis({ appendfsync: p.appendfsync });
  const redisPid = childPidsNamed('redis-server')[0];
  const variants: ClusterRun[] = [];
  try {
    for (const [i, v] of CLUSTER_VARIANTS.entries()) {
      const prefix = CLUSTER_PREFIXES.variant(i);
      const loadSites = Array.from({ length: PUBLISHERS }, (_, n) => loadSite(prefix, n));
      if (v.partitions !== undefined) {
        // Every worker must have telemetry to take, or the variant measures one worker beside an idle one.
        const spread = sitesPerPartition(loadSites, v.partitions, partitionOf);
        if (spread.some((n) => n === 0)) throw new Error(`cluster variant "${v.name}": the load's sites (${prefix}*) leave a partition empty: ${spread.join('/')}`);
      }
      log(`    ${v.name} of a cluster on Redis (appendfsync ${p.appendfsync}), ${v.workers} cloud-sync${v.partitions ? ` workers of ${v.partitions} partitions` : ''}: ${p.readings.toLocaleString('en-US')} readings, alarms meanwhile ...`);
      const cluster = await ClusterStack.start({
        // A database of its own per variant: no session or queue of the one before.
        redisUrl: `${redis.url}/${i + 1}`,
        influxUrl: ctx.influx.url,
        database: ctx.database,
        fireDepartmentUrl: o.fireDepartmentUrl,
        fireDepartmentSecret: o.fireDepartmentSecret,
        brokers: v.brokers,
        workers: v.workers,
        ...(v.partitions !== undefined ? { partitions: v.partitions, sites: [SITE, ...loadSites] } : {}),
        identities: [{ role: 'device', id: `${SITE}.${SMOKE}`, site: SITE, device: SMOKE }, { role: 'service', id: 'bench-observer' }, ...loadIdentities(prefix)],
      });
      const probe = ctx.probe;
      o.hooks.setRunning(async () => {
        await probe.stop().catch(() => {});
        await cluster.stop();
      });
      try {
        // The run's probe (its own process, and the fire department's receiver), pointed at this cluster.
        await probe.start({
          brokerUrl: cluster.probeBrokerUrl,
          site: SITE,
          device: SMOKE,
          gateway: GATEWAY,
          sensorLogin: cluster.login(`${SITE}.${SMOKE}`),
          observerLogin: cluster.login('bench-observer'),
          gatewayHealth: { url: `${cluster.gateway.httpUrl}/health`, headers: cluster.gateway.authHeaders },
        });
        await readyForAlarms(probe, cluster.gateway);
        let worker: PublisherProcess | undefined;
        const procs = cluster.processes();
        const cpu = new CpuMeter(() => ({
          ...Object.fromEntries(Object.entries(procs).map(([name, proc]) => [name, proc.pid])),
          redis: redisPid,
          influxd: o.influxPid,
          bench: process.pid,
          probe: probe.pid,
          publishers: worker?.pid,
        }));
        const vctx: Ctx = {
          ...ctx,
          stack: cluster,
          probe,
          cpu,
          setWorker: (w) => {
            worker = w;
            ctx.setWorker(w);
          },
        };
        const run: ClusterRun = { name: v.name, brokers: v.brokers, workers: v.workers, ...(v.partitions !== undefined ? { partitions: v.partitions } : {}), ...(await measure(vctx, p, prefix, procs, redis)) };
        variants.push(run);
        log(`      ${line(run)}`);
      } finally {
        o.hooks.setRunning(undefined);
        await probe.stop().catch(() => {});
        await cluster.stop();
      }
    }
  } finally {
    await redis.stop();
  }
  const ratios = Object.fromEntries(
    variants.map((v) => [
      v.name,
      { ingest: ratio(v.load.readingsPerSecond, embedded.load.readingsPerSecond), alarmP99: ratio(v.alarms.p99, embedded.alarms.p99), cpuPer100k: ratio(v.cpuSecondsPer100k.system!, embedded.cpuSecondsPer100k.system!) },
    ]),
  );
  return { appendfsync: p.appendfsync, embedded, variants, ratios };
}

function line(r: ClusterRun): string {
  const busiest = Object.entries(r.cpu)
    .filter(([name]) => name !== 'others')
    .map(([name, c]) => `${name} ${c.corePercent}%`)
    .join(', ');
  return `${r.load.readingsPerSecond.toLocaleString('en-US')} readings/s stored (${r.load.lost} lost); alarms p50 ${r.alarms.p50} ms, p99 ${r.alarms.p99} ms, max ${r.alarms.max} ms; ${r.cpuSecondsPer100k.system} CPU s per 100,000 readings; CPU ${busiest}`;
}
