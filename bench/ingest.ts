import type { InfluxServer } from '../tests/helpers/influxdb.js';
import { summarize, type AlarmSample, type LatencySummary } from './alarm-probe.js';
import { HubUnderTest, type LoadRunResult } from './hub-under-test.js';
import type { LoadParams } from './mqtt-ceiling.js';
import type { PublisherProcess } from './publishers.js';
import type { CpuMeter } from './system.js';
import { sleep } from './wait.js';

export interface IngestParams {
  load: LoadParams;
  database: string;
  /** Alarms before any load: the baseline, and the warm-up of every connection on the path. */
  idleAlarms: number;
  /** Alarms during the ingest (phase 3) at most; they stop when the ingest is over. */
  burstAlarms: number;
  /** A burst alarm waits this long for its webhook (it may be queued behind the whole burst). */
  burstAlarmTimeoutMs: number;
  /** Phase 4: this steady load (readings/s), and this many alarms during it. */
  pacedReadingsPerSecond: number;
  pacedAlarms: number;
  pacedAlarmTimeoutMs: number;
  /** Phase 4 ends after this even if not all alarms are done. */
  pacedMaxMs: number;
  /** Pause between one alarm's webhook and the next publish. */
  alarmGapMs: number;
  /** Load running before the first alarm, so it meets the load in progress. */
  alarmStartAfterMs: number;
  countTimeoutMs: number;
}

export interface IngestResult extends LoadRunResult {
  /** The alarms sent while this load ran (sequentially, each after the previous webhook). */
  alarms: LatencySummary;
}

export interface AlarmResult {
  idle: LatencySummary;
  /** Phase 4: during a steady load of `load.readingsPerSecond`. */
  underLoad: LatencySummary;
  load: LoadRunResult & { targetReadingsPerSecond: number };
  /** Alarms published and never delivered, even after the grace period. */
  missing: number;
  /** Each toggle is one smoke reading and one event in InfluxDB. */
  smokeReadings: { published: number; counted: number };
  events: { expected: number; counted: number };
  webhooksRejected: number;
  cloudSyncCounters: Record<string, number>;
  /** The hub's settings that shape these figures (defaults unless the bench set them). */
  hubConfig: Record<string, unknown>;
}

/**
 * Phases 3 and 4 on one hub. Phase 3: a fixed load as fast as the broker takes
 * it, counted back from InfluxDB; alarms are sent during it and reported, but the
 * load outruns the hub, so they measure the queue more than the path. Phase 4:
 * the same publishers paced at the target rate, kept up until the last of the
 * alarms: the latency the target is about.
 */
export async function runIngestAndAlarms(
  influx: InfluxServer,
  p: IngestParams,
  cpu: CpuMeter,
  setWorker: (w: PublisherProcess | undefined) => void,
  progress: (line: string) => void,
): Promise<{ ingest: IngestResult; alarms: AlarmResult }> {
  const hub = await HubUnderTest.start(influx, p.database);
  const { probe } = hub;
  try {
    for (let i = 0; i < p.idleAlarms; i++) {
      await probe.toggle(p.pacedAlarmTimeoutMs);
      await sleep(p.alarmGapMs);
    }
    const idle = summarize(probe.samples);
    progress(`    idle alarms: p50 ${idle.p50} ms, p99 ${idle.p99} ms`);

    const burst: AlarmSample[] = [];
    const ingest = await hub.runLoad(
      { load: p.load, sitePrefix: 'load-site-', runId: 'ingest', untilDuringEnds: false, countTimeoutMs: p.countTimeoutMs },
      cpu,
      setWorker,
      async ({ signal }) => {
        await sleep(p.alarmStartAfterMs);
        while (!signal.aborted && burst.length < p.burstAlarms) {
          burst.push(await probe.toggle(p.burstAlarmTimeoutMs));
          await sleep(p.alarmGapMs);
        }
      },
    );
    progress(`    ${ingest.readingsPerSecond.toLocaleString('en-US')} readings/s, ${ingest.lost} lost; ${burst.length} alarms during it`);

    const paced: AlarmSample[] = [];
    const pacedLoad = await hub.runLoad(
      {
        // No fixed count: the load lasts exactly as long as the alarms.
        load: { ...p.load, batchesPerPublisher: 0 },
        sitePrefix: 'paced-site-',
        runId: 'paced',
        readingsPerSecond: p.pacedReadingsPerSecond,
        untilDuringEnds: true,
        countTimeoutMs: p.countTimeoutMs,
      },
      cpu,
      setWorker,
      async () => {
        await sleep(p.alarmStartAfterMs);
        const deadline = Date.now() + p.pacedMaxMs;
        while (paced.length < p.pacedAlarms && Date.now() < deadline) {
          paced.push(await probe.toggle(p.pacedAlarmTimeoutMs));
          await sleep(p.alarmGapMs);
        }
      },
    );
    progress(`    ${pacedLoad.readingsPerSecond.toLocaleString('en-US')} readings/s paced, ${pacedLoad.lost} lost; ${paced.length} alarms`);

    const missing = await probe.missing(5000);
    const first = probe.samples[0]?.ts ?? 0;
    const expected = probe.samples.length;
    let records = { readings: 0, events: 0 };
    // The smoke readings wait for the gateway's batch timer; give them a moment.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      records = await hub.alarmRecords(first);
      if (records.readings >= expected && records.events >= expected) break;
      await sleep(100);
    }
    return {
      ingest: { ...ingest, alarms: summarize(burst) },
      alarms: {
        idle,
        underLoad: summarize(paced),
        load: { ...pacedLoad, targetReadingsPerSecond: p.pacedReadingsPerSecond },
        missing,
        smokeReadings: { published: expected, counted: records.readings },
        events: { expected, counted: records.events },
        webhooksRejected: hub.receiver.rejected,
        cloudSyncCounters: hub.counters(),
        hubConfig: {
          influx: { ...hub.config.cloudSync.influx, url: undefined },
          brokerPersistence: hub.config.broker.persistence,
          brokerLimits: hub.config.broker.limits,
          gatewayBatch: hub.config.gateway.batch,
        },
      },
    };
  } finally {
    await hub.stop();
  }
}
