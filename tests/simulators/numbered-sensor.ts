import type { MqttClient } from 'mqtt';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';

export interface NumberedSensorOptions {
  brokerUrl: string;
  /** The device's uplink topic. */
  topic: string;
  /** Readings to send, numbered 0 .. count-1. */
  count: number;
  ratePerSec: number;
  /** Reading n carries the time t0 + n ms, so InfluxDB holds each number at its own time. */
  t0: number;
  /** The JSON field of the profile that carries the value (one with no alarm conditions, e.g. `hum`). */
  field: string;
  /** The device's login to the broker. */
  credentials?: { username: string; password: string };
}

/**
 * A sensor that numbers every reading it sends, so a test can check that each
 * number arrived, once. Reading n is `{<field>: n % 100, ts: t0 + n}`: its
 * number is its time, and the value confirms it. Published with QoS 1; `done`
 * resolves when the broker has acknowledged all of them.
 */
export class NumberedSensor {
  sent = 0;
  acknowledged = 0;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private resolveDone!: () => void;
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(private readonly o: NumberedSensorOptions) {}

  static time(t0: number, n: number): number {
    return t0 + n;
  }

  async start(): Promise<this> {
    this.client = await connectMqttAsync(this.o.brokerUrl, { clientId: `numbered-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, ...(this.o.credentials ?? {}) }, { baseMs: 200, capMs: 2000 });
    const tickMs = 10;
    const perTick = Math.max(1, Math.round((this.o.ratePerSec * tickMs) / 1000));
    this.timer = setInterval(() => {
      for (let i = 0; i < perTick && this.sent < this.o.count; i++) this.send(this.sent++);
      if (this.sent >= this.o.count) clearInterval(this.timer);
    }, tickMs);
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.client?.endAsync(true);
  }

  private send(n: number): void {
    const payload = JSON.stringify({ [this.o.field]: n % 100, ts: this.o.t0 + n });
    this.client?.publish(this.o.topic, payload, { qos: 1 }, (err) => {
      if (err) return; // mqtt.js sends it again after a reconnect
      if (++this.acknowledged === this.o.count) this.resolveDone();
    });
  }
}
