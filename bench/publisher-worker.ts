import mqtt, { type MqttClient } from 'mqtt';
import { ReadingBatch, decodeMessage, topics } from '../broker/contract/index.js';
import { LOGINS_ENV, type FromWorker, type MqttLogin, type ToWorker, type WorkerParams } from './publishers.js';
import { BatchEncoder, brokerForPublisher, epochNow, loadGateway, loadSite, makeBatch } from './workload.js';

/**
 * The load: simulated gateways, each its own mqtt.js client publishing contract
 * ReadingBatch messages at QoS 1 with a bounded number awaiting PUBACK. Runs in
 * its own process so that making and sending the load does not share the hub's
 * event loop. Driven by the bench over the IPC channel (see publishers.ts).
 */
const params = JSON.parse(process.argv[2] ?? '{}') as WorkerParams;
const logins = JSON.parse(process.env[LOGINS_ENV] ?? '[]') as MqttLogin[];

// With a callback, a send after the parent has gone is an error passed to it, not an exception.
const send = (m: FromWorker) => {
  if (process.connected) process.send?.(m, undefined, {}, () => {});
};

function fail(message: string): never {
  send({ type: 'error', message });
  process.exit(2);
}

// An orphaned worker must not publish forever: the parent's death closes the channel.
process.on('disconnect', () => process.exit(3));

interface Gateway {
  index: number;
  client: MqttClient;
  encoder: BatchEncoder;
  topic: string;
  seq: number;
  inFlight: number;
  acked: number;
}

let stopRequested = false;
let goAt = 0;
let firstPublishAt: number | undefined;
let lastAckAt = 0;
let fixedDoneSent = false;
let finished = false;
let pacer: NodeJS.Timeout | undefined;
let reporter: NodeJS.Timeout | undefined;
const gateways: Gateway[] = [];
let cpuAtGo = process.cpuUsage();

async function connect(index: number): Promise<Gateway> {
  const login = logins[index];
  if (!login) fail(`no broker login for gateway ${index}`);
  const brokerUrl = brokerForPublisher(index, params.brokerUrls);
  const client = await mqtt.connectAsync(brokerUrl, {
    ...login,
    clientId: `bench-${params.runId}-gw-${index}`,
    clean: true,
    // A lost connection is a failed run, not something to paper over with resends.
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  client.on('close', () => {
    if (!finished) fail(`gateway ${index}: connection to the broker ${brokerUrl} closed during the run`);
  });
  client.on('error', (err) => fail(`gateway ${index}: ${err.message}`));
  const encoder = new BatchEncoder({ sitePrefix: params.sitePrefix, publisher: index, size: params.readingsPerBatch, t0: params.t0, boot: params.runId });
  // The shortcut must produce exactly what the contract and makeBatch say, or the figures are about something else.
  const sentAt = Date.now();
  const expected = JSON.stringify({ ...makeBatch({ sitePrefix: params.sitePrefix, publisher: index, seq: 7, size: params.readingsPerBatch, t0: params.t0, boot: params.runId }), sentAt });
  const encoded = encoder.encode(7, sentAt);
  if (encoded.toString() !== expected) fail(`gateway ${index}: BatchEncoder output differs from makeBatch`);
  const valid = decodeMessage(ReadingBatch, encoded);
  if (!valid.ok) fail(`gateway ${index}: encoded batch breaks the contract: ${valid.error}`);
  return { index, client, encoder, topic: topics.readings(loadSite(params.sitePrefix, index), loadGateway(index)), seq: 0, inFlight: 0, acked: 0 };
}

/** Batches one gateway may have published by now: unlimited unless paced. */
function allowance(): number {
  if (!params.readingsPerSecond) return Infinity;
  const perGatewayPerMs = params.readingsPerSecond / params.readingsPerBatch / params.publishers / 1000;
  // +1: the first batch goes at once, not after one interval.
  return Math.floor((performance.now() - goAt) * perGatewayPerMs) + 1;
}

/** Keeps up to maxInFlight publishes awaiting PUBACK, within the pace; stops after the fixed count, or on `stop` in until-stop mode. */
function pump(g: Gateway): void {
  const limit = allowance();
  while (g.inFlight < params.maxInFlight && g.seq < limit && wantsMore(g)) {
    const seq = ++g.seq;
    const payload = g.encoder.encode(seq, Date.now());
    firstPublishAt ??= epochNow();
    g.inFlight++;
    g.client.publish(g.topic, payload, { qos: 1 }, (err) => {
      if (err) fail(`gateway ${g.index}: publish ${seq} failed: ${err.message}`);
      g.inFlight--;
      g.acked++;
      lastAckAt = epochNow();
      pump(g);
      checkProgress();
    });
  }
}

function wantsMore(g: Gateway): boolean {
  if (g.seq < params.batchesPerPublisher) return true;
  return params.untilStop && !stopRequested;
}

const ackedReadings = () => gateways.reduce((n, g) => n + g.acked, 0) * params.readingsPerBatch;

function checkProgress(): void {
  if (!fixedDoneSent && gateways.every((g) => g.acked >= params.batchesPerPublisher)) {
    fixedDoneSent = true;
    send({ type: 'fixed-done', at: epochNow() });
  }
  if (!finished && gateways.every((g) => g.inFlight === 0 && !wantsMore(g))) void finish();
}

async function finish(): Promise<void> {
  finished = true;
  clearInterval(pacer);
  clearInterval(reporter);
  const cpu = process.cpuUsage(cpuAtGo);
  const batches = gateways.reduce((n, g) => n + g.acked, 0);
  send({
    type: 'done',
    batches,
    readings: batches * params.readingsPerBatch,
    perGateway: gateways.map((g) => g.acked),
    firstPublishAt: firstPublishAt ?? 0,
    lastAckAt,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  });
  await Promise.all(gateways.map((g) => g.client.endAsync()));
  process.disconnect?.();
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'go') {
    cpuAtGo = process.cpuUsage();
    goAt = performance.now();
    send({ type: 'started', at: epochNow() });
    if (params.readingsPerSecond) pacer = setInterval(() => gateways.forEach(pump), 5);
    reporter = setInterval(() => send({ type: 'progress', ackedReadings: ackedReadings(), at: epochNow() }), 100);
    for (const g of gateways) pump(g);
  } else if (m.type === 'stop') {
    stopRequested = true;
    checkProgress();
  }
});

try {
  for (let i = 0; i < params.publishers; i++) gateways.push(await connect(i));
} catch (err) {
  fail(`could not connect to ${params.brokerUrls.join(' or ')}: ${(err as Error).message}`);
}
send({ type: 'ready' });
