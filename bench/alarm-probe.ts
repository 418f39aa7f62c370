import type { MqttClient } from 'mqtt';
import { connectMqttAsync } from '../core/mqtt-reconnect.js';
import { topics } from '../broker/contract/index.js';
import type { ReceivedAlarm } from '../tests/simulators/fire-department.js';
import { sleep, withTimeout } from './wait.js';

export interface AlarmSample {
  state: 'active' | 'cleared';
  ts: number;
  /** Sensor's publish call to the fire department's receipt; undefined while it has not arrived. */
  ms?: number;
  /** Sensor's publish call to the gateway's event coming out of the broker (to an observer): the edge half of `ms`. */
  edgeMs?: number;
  /** Sensor's publish call to its uplink coming out of the broker (to an observer): the first hop of `edgeMs`. */
  uplinkMs?: number;
  late: boolean;
}

export interface AlarmProbeOptions {
  brokerUrl: string;
  site: string;
  device: string;
  gateway: string;
  sensorLogin: { username: string; password: string };
  /** A service login: it reads the gateway's events as cloud-sync does. */
  observerLogin: { username: string; password: string };
  /** A login that may read the detector's uplink (an admin's): splits the edge part at the broker's first hop. */
  uplinkObserverLogin?: { username: string; password: string };
  /** The gateway's view (its /health), so each toggle is a change. */
  isActive: () => Promise<boolean>;
}

/**
 * A smoke detector that goes into alarm and out again, one change at a time,
 * and the stopwatch from its publish to the webhook at the fire department.
 * Each change gets a fresh `ts`: the event id derives from it, and a repeated id
 * would be taken for a resend and not delivered again.
 */
export class AlarmProbe {
  readonly samples: AlarmSample[] = [];
  private client: MqttClient | undefined;
  /** Subscribed to the gateway's events like cloud-sync, but idle otherwise: splits the latency at the broker. */
  private observer: MqttClient | undefined;
  private uplinkObserver: MqttClient | undefined;
  private lastTs = 0;
  private readonly waiting = new Map<string, { sample: AlarmSample; publishedAt: number; arrived: (at: number) => void }>();

  constructor(private readonly o: AlarmProbeOptions) {}

  get topic(): string {
    return topics.deviceUplink(this.o.site, this.o.device);
  }

  async start(): Promise<void> {
    this.client = await connectMqttAsync(this.o.brokerUrl, { ...this.o.sensorLogin, clientId: `bench-smoke-${process.pid}`, clean: true, connectTimeout: 10_000 });
    this.observer = await connectMqttAsync(this.o.brokerUrl, { ...this.o.observerLogin, clientId: `bench-observer-${process.pid}`, clean: true, connectTimeout: 10_000 });
    this.observer.on('message', (_topic, payload) => {
      const at = performance.now();
      try {
        const e = JSON.parse(payload.toString()) as { device?: string; time?: number; state?: string };
        const w = e.device === this.o.device ? this.waiting.get(`${String(e.time)}/${String(e.state)}`) : undefined;
        if (w) w.sample.edgeMs = at - w.publishedAt;
      } catch {
        // Not ours to judge; cloud-sync counts invalid messages.
      }
    });
    const granted = await this.observer.subscribeAsync(topics.events(this.o.site, this.o.gateway), { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new Error('the broker refused the observer its subscription to the gateway events');
    if (this.o.uplinkObserverLogin) {
      this.uplinkObserver = await connectMqttAsync(this.o.brokerUrl, { ...this.o.uplinkObserverLogin, clientId: `bench-uplink-observer-${process.pid}`, clean: true, connectTimeout: 10_000 });
      this.uplinkObserver.on('message', (_topic, payload) => {
        const at = performance.now();
        try {
          const u = JSON.parse(payload.toString()) as { smoke?: boolean; ts?: number };
          const w = this.waiting.get(`${String(u.ts)}/${u.smoke ? 'active' : 'cleared'}`);
          if (w) w.sample.uplinkMs = at - w.publishedAt;
        } catch {
          // Not a probe's payload.
        }
      });
      const up = await this.uplinkObserver.subscribeAsync(this.topic, { qos: 1 });
      if (up.some((g) => g.qos === 128)) throw new Error('the broker refused the uplink observer its subscription');
    }
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
    await this.observer?.endAsync();
    await this.uplinkObserver?.endAsync();
    this.uplinkObserver = undefined;
    this.client = undefined;
    this.observer = undefined;
  }

  /** The receiver's onAlarm: called as the webhook arrives, so this is the arrival time. */
  arrived(alarm: ReceivedAlarm): void {
    const at = performance.now();
    const d = alarm.body.data;
    if (d.device !== this.o.device) return;
    const key = `${String(d.time)}/${d.state}`;
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    w.sample.ms = at - w.publishedAt;
    w.arrived(at);
  }

  /** A smoke payload that changes nothing (the detector is clear), for readiness checks. */
  publishQuiet(): number {
    const ts = this.nextTs();
    this.client?.publish(this.topic, JSON.stringify({ smoke: false, ts }), { qos: 1 });
    return ts;
  }

  /** Raises the alarm if it is clear, clears it if raised; waits for the webhook up to `timeoutMs`. */
  async toggle(timeoutMs: number): Promise<AlarmSample> {
    const smoke = !(await this.o.isActive());
    const ts = this.nextTs();
    const sample: AlarmSample = { state: smoke ? 'active' : 'cleared', ts, late: false };
    this.samples.push(sample);
    const arrival = new Promise<number>((resolve) => {
      const payload = JSON.stringify({ smoke, ts });
      const publishedAt = performance.now();
      this.waiting.set(`${ts}/${sample.state}`, { sample, publishedAt, arrived: resolve });
      this.client?.publish(this.topic, payload, { qos: 1 });
    });
    try {
      await withTimeout(arrival, timeoutMs, `webhook for smoke ${sample.state} at ts ${ts}`);
    } catch {
      // Counted as late; if it arrives later it still gets its time. The engine's
      // own state decides the next toggle, so one lost alarm does not desynchronise the rest.
      sample.late = true;
    }
    return sample;
  }

  /** Alarms fired and not (yet) delivered; waits up to `graceMs` for stragglers. */
  async missing(graceMs: number): Promise<number> {
    const deadline = Date.now() + graceMs;
    while (this.waiting.size > 0 && Date.now() < deadline) await sleep(50);
    return this.waiting.size;
  }

  private nextTs(): number {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    return this.lastTs;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

export interface LatencySummary extends Percentiles {
  count: number;
  delivered: number;
  late: number;
  /** Smoke detector to the event leaving the broker (gateway, its publisher, the broker). */
  edge: Percentiles;
  /** The event leaving the broker to the webhook's arrival (cloud-sync's consumer, dispatcher, HTTP). */
  hub: Percentiles;
  /** Smoke detector to its uplink leaving the broker: the first hop of `edge` (when the bench could observe it). */
  uplink?: Percentiles;
  /** Every sample in ms, in the order sent (null: never arrived); the edge part and its first hop of each, where observed. */
  samplesMs: (number | null)[];
  samplesEdgeMs: (number | null)[];
  samplesUplinkMs: (number | null)[];
}

const round = (x: number) => Math.round(x * 100) / 100;

function percentiles(values: number[]): Percentiles {
  const v = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(v, 50)),
    p90: round(percentile(v, 90)),
    p99: round(percentile(v, 99)),
    max: round(v[v.length - 1] ?? NaN),
    min: round(v[0] ?? NaN),
    mean: round(v.reduce((a, b) => a + b, 0) / (v.length || 1)),
  };
}

export function summarize(samples: AlarmSample[]): LatencySummary {
  const delivered = samples.filter((s) => s.ms !== undefined);
  const split = delivered.filter((s) => s.edgeMs !== undefined);
  const up = delivered.filter((s) => s.uplinkMs !== undefined);
  return {
    count: samples.length,
    delivered: delivered.length,
    late: samples.filter((s) => s.late).length,
    ...percentiles(delivered.map((s) => s.ms!)),
    edge: percentiles(split.map((s) => s.edgeMs!)),
    hub: percentiles(split.map((s) => s.ms! - s.edgeMs!)),
    ...(up.length ? { uplink: percentiles(up.map((s) => s.uplinkMs!)) } : {}),
    samplesMs: samples.map((s) => (s.ms === undefined ? null : round(s.ms))),
    samplesEdgeMs: samples.map((s) => (s.edgeMs === undefined ? null : round(s.edgeMs))),
    samplesUplinkMs: samples.map((s) => (s.uplinkMs === undefined ? null : round(s.uplinkMs))),
  };
}
