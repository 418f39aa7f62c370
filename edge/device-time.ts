import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';

export interface DeviceTimeDeps {
  bounds: Config['gateway']['deviceTime'];
  logger: Logger;
  metrics: Metrics;
}

/**
 * Checks the times devices stamp their own readings and signals with (an MQTT
 * payload's `ts`, an OPC-UA source timestamp) against the gateway's clock. A
 * time too far ahead or behind (a device whose clock was never set, a payload
 * that says 9e15) is not believed: the caller keeps the value and stamps it
 * with the time the gateway received it, quality `uncertain`, so the device's
 * time goes nowhere it could break InfluxDB or hide a reading in 1970 or 2500.
 *
 * Every such time is counted per device; the log says so once when a device's
 * clock goes wrong and once when it is right again, not once per reading.
 */
export class DeviceTimeCheck {
  private readonly wrong = new Set<string>();

  constructor(private readonly d: DeviceTimeDeps) {}

  /** Whether `device`'s own `time` may be used, given that the gateway received it at `now`. */
  plausible(device: string, time: number, now: number): boolean {
    const { maxAheadMs, maxBehindMs } = this.d.bounds;
    const ok = time <= now + maxAheadMs && time >= now - maxBehindMs;
    if (ok) {
      if (this.wrong.delete(device)) this.d.logger.info({ device }, "device's clock agrees with the gateway's again; its own times are used again");
      return true;
    }
    this.d.metrics.inc('cosafe_edge_device_time_rejected_total', { device });
    if (!this.wrong.has(device)) {
      this.wrong.add(device);
      this.d.logger.warn(
        { code: 'COSAFE_ERR_DEVICE_TIME', device, deviceTime: time, gatewayTime: now, offsetMs: time - now, maxAheadMs, maxBehindMs },
        "device time too far from the gateway's clock: its readings are stamped with the receive time, quality uncertain (gateway.deviceTime)",
      );
    }
    return false;
  }
}
