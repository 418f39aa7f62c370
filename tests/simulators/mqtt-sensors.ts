import type { MqttClient } from 'mqtt';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';

/**
 * Simulated MQTT sensors, each publishing its own JSON payload the way the real
 * device would: a temperature/humidity sensor and a smoke detector that goes
 * into alarm now and then. Used by `cosafe demo` and by tests.
 */
export interface SimulatedDevice {
  topic: string;
  kind: 'temperature-humidity' | 'smoke-detector';
  /** The device's own login (a device identity may publish only on its own topic). */
  credentials?: { username: string; password: string };
}

export interface SensorSimulatorOptions {
  brokerUrl: string;
  devices: SimulatedDevice[];
  /** Milliseconds between reports of each device. */
  intervalMs: number;
  /** A smoke detector is in alarm for `alarmForMs` out of every `alarmEveryMs` (0: never). */
  alarmEveryMs?: number;
  alarmForMs?: number;
}

export class SensorSimulator {
  sent = 0;
  /** One connection per device, as real devices have. */
  private clients: MqttClient[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();

  constructor(private readonly o: SensorSimulatorOptions) {}

  async start(): Promise<void> {
    this.clients = await Promise.all(
      this.o.devices.map((d) =>
        connectMqttAsync(this.o.brokerUrl, {
          clientId: `cosafe-sim-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
          ...(d.credentials ?? {}),
        }),
      ),
    );
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.clients.splice(0).map((c) => c.endAsync()));
  }

  private tick(): void {
    const now = Date.now();
    const t = (now - this.startedAt) / 1000;
    const every = this.o.alarmEveryMs ?? 0;
    const inAlarm = every > 0 && (now - this.startedAt) % every >= every - (this.o.alarmForMs ?? 10_000);
    this.o.devices.forEach((d, i) => {
      const payload =
        d.kind === 'temperature-humidity'
          ? { temp: round(21 + i + Math.sin(t / 60 + i) * 1.5 + noise(0.1)), hum: round(40 + Math.cos(t / 90 + i) * 5 + noise(0.5)), bat: 96, ts: now }
          : { smoke: inAlarm, obscuration: round(inAlarm ? 8 + noise(1) : 0.3 + noise(0.05)), battery: 100, ts: now };
      this.clients[i]?.publish(d.topic, JSON.stringify(payload), { qos: 1 });
      this.sent++;
    });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
const noise = (amp: number) => (Math.random() * 2 - 1) * amp;
