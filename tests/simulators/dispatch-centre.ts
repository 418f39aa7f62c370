import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';
import { topics, type AlarmEvent } from '../../broker/contract/index.js';

/**
 * A fire department's dispatcher for the demo: told of an alarm (by its
 * webhook receiver), it acknowledges after a few seconds over MQTT, as a
 * dispatch centre's own system would, on `dispatch/<district>/acks/<eventId>`;
 * for a fire it has confirmed, the acknowledgement also asks to warn the
 * public (`warnPublic`).
 */
export class DispatchCentre {
  private client: MqttClient | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly o: { brokerUrl: string; district: string; login: { username: string; password: string }; operator: string; delayMs: number }) {}

  async start(): Promise<this> {
    this.client = await connectMqttAsync(this.o.brokerUrl, { ...this.o.login });
    return this;
  }

  /** Acknowledges the alarm of `eventId` after the dispatcher's delay (warning the public if asked); calls `onDone` when the broker has it. */
  acknowledgeLater(eventId: string, onDone?: () => void, o: { warnPublic?: boolean } = {}): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      const ack = { v: 1, operator: this.o.operator, ...(o.warnPublic !== undefined ? { warnPublic: o.warnPublic } : {}) };
      void this.client
        ?.publishAsync(topics.dispatchAck(this.o.district, eventId), JSON.stringify(ack), { qos: 1 })
        .then(() => onDone?.())
        .catch(() => {});
    }, this.o.delayMs);
    this.timers.add(t);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await this.client?.endAsync();
  }
}

/**
 * A second building's gateway for the demo, in another district: it raises a
 * heat alarm now and then and clears it later, on the contract's events topic.
 */
export class AlarmingGateway {
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private n = 0;

  constructor(private readonly o: { brokerUrl: string; site: string; gateway: string; login: { username: string; password: string }; everyMs: number; forMs: number }) {}

  async start(): Promise<this> {
    this.client = await connectMqttAsync(this.o.brokerUrl, { ...this.o.login });
    if (this.o.everyMs > 0) {
      // The first one soon after the start, so the demo shows an escalation within a minute.
      this.timer = setTimeout(() => {
        this.cycle();
        this.timer = setInterval(() => this.cycle(), this.o.everyMs);
      }, Math.min(10_000, this.o.everyMs / 4));
    }
    return this;
  }

  private cycle(): void {
    ++this.n;
    const event = (state: AlarmEvent['state']): AlarmEvent => ({
      v: 1,
      eventId: `evt_${randomBytes(16).toString('hex')}`,
      gateway: this.o.gateway,
      site: this.o.site,
      device: 'heat-rack-4',
      profile: 'mqtt-smoke-detector',
      condition: 'heat',
      class: 'fire',
      state,
      metric: 'temperature',
      value: state === 'active' ? 71 : 24,
      unit: 'Cel',
      time: Date.now(),
      location: 'high-bay storage, rack 4',
    });
    void this.client?.publishAsync(topics.events(this.o.site, this.o.gateway), JSON.stringify(event('active')), { qos: 1 }).catch(() => {});
    setTimeout(() => void this.client?.publishAsync(topics.events(this.o.site, this.o.gateway), JSON.stringify(event('cleared')), { qos: 1 }).catch(() => {}), this.o.forMs).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    await this.client?.endAsync();
  }
}
