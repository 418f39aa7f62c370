import { summarize, type LatencySummary } from './alarm-probe.js';
import type { ProbeLoopDelay } from './remote-probe.js';
import type { FleetConnect, LoginFleet } from './fleet.js';
import { countReadings } from './influx-direct.js';
import { alarmsWhile, peakRss, watchHub, type Ctx, type HubDuring } from './phases.js';
import { SITE } from './stack-processes.js';
import { sleep } from './wait.js';
import { epochNow } from './workload.js';

type Cpu = Record<string, { cpuMs: number; corePercent: number }>;

export interface FleetParams {
  count: number;
  /** Fleet processes: the load generator gets cores of its own share and is never what limits the figures. */
  processes: number;
  everyMs: number;
  warmupMs: number;
  alarms: number;
  maxMs: number;
  gapMs: number;
  timeoutMs: number;
  flood: { perDevice: number; window: number; countTimeoutMs: number };
}

export interface ConnectResult extends FleetConnect {
  cpu: Cpu;
}

/** Issue 14's workload: every device publishes as fast as its PUBACKs come back, `window` in flight. */
export interface FloodResult {
  published: number;
  acked: number;
  failed: number;
  counted: number;
  /** Acknowledged by the broker and not in InfluxDB. */
  lost: number;
  /** First publish to the last PUBACK. */
  ackedPerSecond: number;
  /** First publish until InfluxDB counted every acknowledged reading. */
  storedPerSecond: number;
  storedMs: number;
  /** Hub and gateway, not influxd nor the load generator. */
  cpuSecondsPer100kReadings: number;
  peakRssMiB: { hub: number; gateway: number };
  cpu: Cpu;
}

export interface DevicesResult {
  /** Every device logs in at once with its own credential, the hub's verified-secret cache empty (as after a restart). */
  connectCold: ConnectResult;
  /** Every connection cut and made again at once (the cache remembers the secrets). */
  connectWarm: ConnectResult;
  /** probeLoopDelayMs: the alarm probe's own event loop while it timed these alarms (its process, remote-probe.ts): the stopwatch's resolution. */
  paced: { published: number; acked: number; failed: number; gatewayReadings: number; alarms: LatencySummary; hub: HubDuring; probeLoopDelayMs: ProbeLoopDelay };
  flood: FloodResult;
}

async function connect(ctx: Ctx, fleet: LoginFleet, timeoutMs: number): Promise<ConnectResult> {
  ctx.cpu.begin();
  const r = await fleet.connect(timeoutMs);
  return { ...r, cpu: ctx.cpu.end() };
}

/**
 * 1,000 MQTT devices, each with its own credential and connection, one JSON
 * reading per message at QoS 1, through the gateway's MQTT adapter (issues 10
 * and 14): the fleet's logins, alarms while every device reports once a
 * second, the throughput when every device sends as fast as the broker
 * acknowledges, and the fleet reconnecting at once.
 */
export async function runFleetDevices(ctx: Ctx, fleet: LoginFleet, p: FleetParams): Promise<DevicesResult> {
  const { stack } = ctx;
  await fleet.ready(60_000);
  const connectCold = await connect(ctx, fleet, 120_000);
  ctx.log(`    ${connectCold.connected.toLocaleString('en-US')} devices logged in in ${connectCold.ms} ms (cold)`);

  const before = (await stack.gateway.metrics()).cosafe_edge_readings_total ?? 0;
  const paced = await watchHub(ctx, async () => {
    fleet.paced(p.everyMs);
    await sleep(p.warmupMs);
    await ctx.probe.loopDelay();
    const samples = await alarmsWhile(ctx.probe, { gapMs: p.gapMs, timeoutMs: p.timeoutMs, max: p.alarms, maxMs: p.maxMs, until: () => false });
    const probeLoopDelayMs = await ctx.probe.loopDelay();
    const sent = await fleet.stopPaced(30_000);
    return { ...sent, samples, probeLoopDelayMs };
  });
  const gatewayReadings = ((await stack.gateway.metrics()).cosafe_edge_readings_total ?? 0) - before;
  ctx.log(`    alarms while devices report: p50 ${summarize(paced.result.samples).p50} ms, p99 ${summarize(paced.result.samples).p99} ms; the probe's own event loop meanwhile p99 ${paced.result.probeLoopDelayMs.p99Ms} ms, max ${paced.result.probeLoopDelayMs.maxMs} ms`);

  // Readings stamped an hour ago, one millisecond apart per device: countable apart from every other reading of the site.
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const where = `site = '${SITE}' AND time >= ${t0}ms AND time < ${t0 + p.flood.perDevice}ms`;
  ctx.cpu.begin();
  const flooded = await peakRss({ hub: stack.hub, gateway: stack.gateway }, async () => {
    const r = await fleet.flood({ perDevice: p.flood.perDevice, window: p.flood.window, t0, timeoutMs: 300_000 });
    let counted = 0;
    let countedAt = epochNow();
    const deadline = Date.now() + p.flood.countTimeoutMs;
    while (Date.now() < deadline) {
      counted = await countReadings(ctx.influx, ctx.database, where);
      countedAt = epochNow();
      if (counted >= r.acked) break;
      await sleep(100);
    }
    return { ...r, counted, countedAt };
  });
  const cpu = ctx.cpu.end();
  const f = flooded.result;
  const systemCpuMs = (cpu.hub?.cpuMs ?? 0) + (cpu.gateway?.cpuMs ?? 0);
  const flood: FloodResult = {
    published: f.published,
    acked: f.acked,
    failed: f.failed,
    counted: f.counted,
    lost: Math.max(0, f.acked - f.counted),
    ackedPerSecond: Math.round(f.acked / ((f.lastAckAt - f.firstAt) / 1000)),
    storedPerSecond: Math.round(f.counted / ((f.countedAt - f.firstAt) / 1000)),
    storedMs: Math.round(f.countedAt - f.firstAt),
    cpuSecondsPer100kReadings: f.counted ? Math.round((systemCpuMs / 1000 / f.counted) * 100_000 * 10) / 10 : Number.NaN,
    peakRssMiB: { hub: flooded.peak.hub ?? 0, gateway: flooded.peak.gateway ?? 0 },
    cpu,
  };

  await fleet.drop(30_000);
  const connectWarm = await connect(ctx, fleet, 120_000);
  return {
    connectCold,
    connectWarm,
    paced: { published: paced.result.published, acked: paced.result.acked, failed: paced.result.failed, gatewayReadings, alarms: summarize(paced.result.samples), hub: paced.hub, probeLoopDelayMs: paced.result.probeLoopDelayMs },
    flood,
  };
}
