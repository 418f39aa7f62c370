import type { AlarmEvent, Reading } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { DecodeOutcome } from '../device-profiles/codecs/index.js';
import type { AlarmEngine, EngineValue } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';
import type { DeviceTimeCheck } from './device-time.js';
import type { Supervision } from './supervision.js';

export interface PipelineDeps {
  engine: AlarmEngine;
  supervision: Supervision;
  deviceTime: DeviceTimeCheck;
  /** Records and sends events; resolves true once they are safe, false when the outbox refused them (undefined when there were none). */
  raise: (events: AlarmEvent[]) => Promise<boolean> | undefined;
  /** Accepts readings into the telemetry outbox. */
  addReadings: (readings: Reading[]) => void;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

/**
 * What happens to one device input at the edge: decode errors counted, the
 * link marked alive (or lost, when a bridge says the device is offline), a
 * device time the gateway cannot believe replaced by the receive time, every
 * value kept as a reading and run through the alarm engine, the device's own
 * signals tracked. Events go out first: they are written (with their
 * conditions) before the readings of the same input.
 */
export class Pipeline {
  constructor(private readonly d: PipelineDeps) {}

  /** Resolves once what this input raised is safe (true), or refused by the outbox (false), for an adapter that acknowledges its device then; undefined when nothing was raised. */
  onDecoded(binding: DeviceBinding, outcome: DecodeOutcome): Promise<boolean> | undefined {
    const { metrics, logger, engine, deviceTime } = this.d;
    const device = binding.device.id;
    if (outcome.errors.length) {
      metrics.inc('cosafe_edge_decode_errors_total', { device });
      logger.warn({ code: 'COSAFE_ERR_PAYLOAD_INVALID', device, profile: binding.profile.id, errors: outcome.errors }, 'device input not decoded');
    }
    const now = this.d.clock.now();
    // A bridge that says the device is offline (zigbee2mqtt availability): lost now, not after the silence limit.
    if (outcome.availability === 'offline') return this.d.raise(this.d.supervision.reportedOffline(binding, now, outcome.availabilityText ?? 'reported offline'));
    const events: AlarmEvent[] = this.d.supervision.heard(binding, now);
    const readings: Reading[] = [];
    for (const decoded of outcome.values) {
      // A device time the gateway cannot believe: the value stays, the receive time replaces the time.
      const v: EngineValue = deviceTime.plausible(device, decoded.time, now) ? decoded : { ...decoded, time: now, quality: decoded.quality === 'bad' ? 'bad' : 'uncertain' };
      if (v.quality === 'bad') metrics.inc('cosafe_edge_bad_readings_total', { device, metric: v.metric });
      readings.push({ device, metric: v.metric, value: v.value, unit: v.unit, time: v.time, quality: v.quality, profile: binding.profile.id });
      events.push(...engine.evaluate(binding, v));
    }
    const signals = outcome.signals.map((s) => (deviceTime.plausible(device, s.time, now) ? s : { ...s, time: now }));
    if (outcome.resetAll) events.push(...engine.resetSignals(binding, outcome.resetAt !== undefined && deviceTime.plausible(device, outcome.resetAt, now) ? outcome.resetAt : now));
    for (const s of signals) events.push(...engine.signal(binding, s));
    const safe = this.d.raise(events);
    if (readings.length) {
      metrics.inc('cosafe_edge_readings_total', {}, readings.length);
      this.d.addReadings(readings);
    }
    return safe;
  }
}
