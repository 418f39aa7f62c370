import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { subscriptions } from '../broker/contract/index.js';
import { startHubBroker } from '../broker/hub.js';
import { buildConfig } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import { Metrics } from '../core/metrics.js';
import { PublisherProcess, publisherIdentities } from './publishers.js';
import type { CpuMeter } from './system.js';
import { withTimeout } from './wait.js';
import { epochNow } from './workload.js';

export interface LoadParams {
  publishers: number;
  batchesPerPublisher: number;
  readingsPerBatch: number;
  maxInFlight: number;
}

/** `disk` is the hub's default (a QoS 1 message is on disk before PUBACK); `memory` shows what that costs. */
export type BrokerPersistence = 'disk' | 'memory';

export interface MqttCeilingResult {
  persistence: BrokerPersistence;
  readingsSent: number;
  readingsReceived: number;
  batchesReceived: number;
  duplicateBatches: number;
  /** First to last message at the subscriber. */
  ms: number;
  readingsPerSecond: number;
  /** First publish to last message at the subscriber (the way the ingest phase is timed). */
  msFromFirstPublish: number;
  readingsPerSecondFromFirstPublish: number;
  cpu: Record<string, { cpuMs: number; corePercent: number }>;
}

const SEQ = Buffer.from('"seq":');

/**
 * The per-client publish throttle lifted for this phase only: it is a policy
 * (default 100 publishes/s, burst 500), not a capacity, and would make this
 * phase measure itself instead of the broker.
 */
export const CEILING_LIMITS = { publishesPerSecond: 1_000_000, publishBurst: 1_000_000 };

/**
 * What the hub's broker can carry to a consumer that does nothing: the upper
 * bound for ingest. The broker is set up as the composition root sets it up
 * (same persistence, same hooks: everyone logs in and is held to the ACL), and
 * the subscriber has a persistent session, as cloud-sync does, so the broker
 * does the same work per message. Broker and subscriber share one event loop,
 * as broker and cloud-sync do in the embedded stack.
 */
export async function runMqttCeiling(
  load: LoadParams,
  persistence: BrokerPersistence,
  cpu: CpuMeter,
  setWorker: (w: PublisherProcess | undefined) => void,
): Promise<MqttCeilingResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-bench-ceiling-'));
  let worker: PublisherProcess | undefined;
  try {
    const config = buildConfig({ dataDir, broker: { host: '127.0.0.1', port: 0, limits: CEILING_LIMITS, persistence } });
    const broker = await startHubBroker({ config: config.broker, logger: silentLogger, metrics: new Metrics(), ...(persistence === 'disk' ? { dataDir } : {}) });
    try {
      return await measure(broker, load, persistence, cpu, (w) => {
        worker = w;
        setWorker(w);
      });
    } finally {
      await worker?.kill();
      setWorker(undefined);
      await broker.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function measure(
  broker: Awaited<ReturnType<typeof startHubBroker>>,
  load: LoadParams,
  persistence: BrokerPersistence,
  cpu: CpuMeter,
  setWorker: (w: PublisherProcess) => void,
): Promise<MqttCeilingResult> {
  const expectedBatches = load.publishers * load.batchesPerPublisher;
  const subLogin = broker.ephemeral.issue({ role: 'service', id: '@bench-ceiling-sub' });
  const sub = await mqtt.connectAsync(broker.url, { ...subLogin, clientId: `bench-ceiling-sub-${persistence}`, clean: false, reconnectPeriod: 0, connectTimeout: 5000 });
  try {
    let batches = 0;
    let duplicates = 0;
    let first = 0;
    let last = 0;
    // The seq is read off the raw bytes, not parsed: this consumer must cost as little as possible.
    const seen = new Set<string>();
    let allIn: () => void = () => {};
    const allArrived = new Promise<void>((resolve) => (allIn = resolve));
    sub.on('message', (topic, payload) => {
      const now = epochNow();
      if (first === 0) first = now;
      last = now;
      const at = payload.indexOf(SEQ) + SEQ.length;
      const key = `${topic}#${payload.subarray(at, payload.indexOf(0x2c, at)).toString()}`;
      if (seen.has(key)) duplicates++;
      else seen.add(key);
      batches++;
      if (seen.size >= expectedBatches) allIn();
    });
    const granted = await sub.subscribeAsync(subscriptions.allReadings, { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new Error('mqtt-ceiling: the broker refused the subscription');

    const ids = { runId: `ceiling-${persistence}`, sitePrefix: 'ceiling-site-', publishers: load.publishers };
    const logins = publisherIdentities(ids).map((identity) => broker.ephemeral.issue(identity));
    const worker = new PublisherProcess({ ...load, ...ids, brokerUrl: broker.url, t0: Date.now() - 3_600_000, untilStop: false }, logins);
    setWorker(worker);
    await worker.waitFor('ready', 20_000);
    cpu.begin();
    worker.go();
    const done = await worker.waitFor('done', 60_000);
    await withTimeout(allArrived, 15_000, `mqtt-ceiling: all ${expectedBatches} batches at the subscriber (${seen.size} arrived)`);
    const cpuUse = cpu.end({ publishers: done.cpuMs });
    const readings = seen.size * load.readingsPerBatch;
    const ms = last - first;
    const msFromFirstPublish = last - done.firstPublishAt;
    return {
      persistence,
      readingsSent: done.readings,
      readingsReceived: readings,
      batchesReceived: batches,
      duplicateBatches: duplicates,
      ms: Math.round(ms),
      readingsPerSecond: Math.round(readings / (ms / 1000)),
      msFromFirstPublish: Math.round(msFromFirstPublish),
      readingsPerSecondFromFirstPublish: Math.round(readings / (msFromFirstPublish / 1000)),
      cpu: cpuUse,
    };
  } finally {
    await sub.endAsync();
  }
}
