import type { DeviceConfig } from '../core/config.js';
import type { Profile } from '../device-profiles/schema.js';

/** A configured device joined with its profile and its resolved transport address. */
export interface DeviceBinding {
  device: DeviceConfig;
  profile: Profile;
  /** MQTT topic the device publishes on. */
  topic: string;
}
