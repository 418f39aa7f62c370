import type { Reading } from '../broker/contract/index.js';
import { topics } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { CosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { Metrics } from '../core/metrics.js';
import type { DecodedValue } from '../device-profiles/codecs/json-payload.js';
import type { Profile } from '../device-profiles/schema.js';
import type { Adapter } from './adapters/adapter.js';
import { adapterFor } from './adapters/registry.js';
import { AlarmEngine } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';
import { Publisher } from './publisher.js';

export interface GatewayDeps {
  config: Config['gateway'];
  /** The hub broker (resolved by the composition root). */
  brokerUrl: string;
  /** The gateway's login to the hub broker (resolved by the composition root). */
  brokerAuth?: MqttClientAuth;
  profiles: ReadonlyMap<string, Profile>;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
}

/** Joins each configured device with its profile; every unknown profile is reported at once. */
export function bindDevices(config: Config['gateway'], profiles: ReadonlyMap<string, Profile>): DeviceBinding[] {
  const problems: string[] = [];
  const bindings: DeviceBinding[] = [];
  config.devices.forEach((device, i) => {
    const profile = profiles.get(device.profile);
    if (!profile) {
      problems.push(`gateway.devices[${i}].profile: unknown profile "${device.profile}"; known: ${[...profiles.keys()].sort().join(', ')}`);
      return;
    }
    bindings.push({ device, profile, topic: device.topic ?? topics.deviceUplink(config.site, device.id) });
  });
  if (problems.length) throw new CosafeError('COSAFE_ERR_PROFILE_UNKNOWN', 'devices name profiles that do not exist', { details: problems });
  return bindings;
}

/**
 * The edge gateway: adapters read devices, the profile decodes, the alarm engine
 * decides, the publisher sends readings and events to the hub.
 */
export class Gateway {
  private readonly adapters: Adapter[] = [];
  private readonly publisher: Publisher;
  private readonly alarms: AlarmEngine;
  private readonly abort = new AbortController();

  constructor(private readonly deps: GatewayDeps) {
    const { config } = deps;
    this.publisher = new Publisher({ brokerUrl: deps.brokerUrl, ...(deps.brokerAuth ? { auth: deps.brokerAuth } : {}), site: config.site, gateway: config.id, batch: config.batch, logger: deps.logger, clock: deps.clock, metrics: deps.metrics });
    this.alarms = new AlarmEngine({ site: config.site, gateway: config.id });
    const bindings = bindDevices(config, deps.profiles);
    const byTransport = new Map<string, DeviceBinding[]>();
    for (const b of bindings) byTransport.set(b.profile.transport, [...(byTransport.get(b.profile.transport) ?? []), b]);
    for (const [kind, devices] of byTransport) {
      this.adapters.push(
        adapterFor(kind)({
          logger: deps.logger.child({ adapter: kind }),
          clock: deps.clock,
          devices,
          brokerUrl: deps.brokerUrl,
          ...(deps.brokerAuth ? { brokerAuth: deps.brokerAuth } : {}),
          onValues: (binding, values) => this.onValues(binding, values),
          onDecodeError: (binding, errors) => {
            deps.metrics.inc('cosafe_edge_decode_errors_total', 'Device payloads that could not be fully decoded', { device: binding.device.id });
            deps.logger.warn({ device: binding.device.id, profile: binding.profile.id, errors }, 'device payload not decoded');
          },
        }),
      );
    }
  }

  async start(): Promise<void> {
    await this.publisher.start();
    for (const a of this.adapters) await a.start(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const a of this.adapters) await a.stop();
    await this.publisher.stop();
  }

  health() {
    return { adapters: this.adapters.map((a) => a.health()), activeConditions: this.alarms.activeConditions() };
  }

  private onValues(binding: DeviceBinding, values: DecodedValue[]): void {
    const { metrics } = this.deps;
    const readings: Reading[] = [];
    for (const v of values) {
      if (v.quality === 'bad') {
        metrics.inc('cosafe_edge_bad_readings_total', 'Readings outside their valid range (kept with quality "bad")', { device: binding.device.id, metric: v.metric });
      }
      readings.push({ device: binding.device.id, metric: v.metric, value: v.value, unit: v.unit, time: v.time, quality: v.quality, profile: binding.profile.id });
      for (const event of this.alarms.evaluate(binding, v)) {
        metrics.inc('cosafe_edge_events_total', 'Alarm events raised or cleared at the edge', { class: event.class, state: event.state });
        this.deps.logger.warn({ device: event.device, condition: event.condition, class: event.class, state: event.state, value: event.value }, 'alarm event');
        this.publisher.publishEvent(event);
      }
    }
    metrics.inc('cosafe_edge_readings_total', 'Readings decoded at the edge', {}, readings.length);
    this.publisher.addReadings(readings);
  }
}
