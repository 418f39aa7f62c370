import { topics } from '../broker/contract/index.js';
import type { Config, DeviceConfig } from '../core/config.js';

export type BridgeConfig = Config['gateway']['bridges'][number];
import { CosafeError } from '../core/errors.js';
import { formatPath } from '../core/yaml-file.js';
import type { Profile } from '../device-profiles/schema.js';

/** A configured device joined with its profile and its resolved transport address. */
export interface DeviceBinding {
  device: DeviceConfig;
  profile: Profile;
  /** mqtt: the topic the device publishes on. */
  topic?: string;
  /** mqtt: the bridge that publishes for it (its topic is `<prefix>/<name>`). */
  bridge?: BridgeConfig;
  /** modbus-rtu: the unit id on the bus (device's, else the profile's). */
  unitId?: number;
}

/** Where a config field is, for a person: `gateway.devices[2].profile`, or with the file and line (`site.yaml:14 gateway.devices[2].profile`). */
export type ConfigPlace = (path: (string | number)[]) => string;

/**
 * Joins each configured device with its profile and checks that it has the
 * address its transport needs. Every problem is reported at once; an unknown
 * profile is COSAFE_ERR_PROFILE_UNKNOWN (when it is the only kind of problem).
 */
export function bindDevices(config: Config['gateway'], profiles: ReadonlyMap<string, Profile>, place: ConfigPlace = formatPath): DeviceBinding[] {
  const problems: string[] = [];
  let unknownProfiles = 0;
  const bindings: DeviceBinding[] = [];
  config.devices.forEach((device, i) => {
    const at = (field: string) => place(['gateway', 'devices', i, field]);
    const profile = profiles.get(device.profile);
    if (!profile) {
      unknownProfiles++;
      problems.push(`${at('profile')}: unknown profile "${device.profile}" (COSAFE_ERR_PROFILE_UNKNOWN); known: ${[...profiles.keys()].sort().join(', ')}`);
      return;
    }
    if (device.bridge !== undefined && profile.transport !== 'mqtt') problems.push(`${at('bridge')}: a bridge publishes over MQTT; profile "${profile.id}" speaks ${profile.transport}`);
    const need = (field: 'port' | 'endpoint') => {
      if (device[field] === undefined) problems.push(`${at(field)}: required for a ${profile.transport} device (profile "${profile.id}")`);
    };
    switch (profile.transport) {
      case 'mqtt': {
        const bridge = config.bridges.find((b) => b.id === device.bridge);
        if (bridge) bindings.push({ device, profile, bridge, topic: `${bridge.prefix}/${device.name ?? device.id}` });
        else bindings.push({ device, profile, topic: device.topic ?? topics.deviceUplink(config.site, device.id) });
        return;
      }
      case 'modbus-rtu': {
        need('port');
        const unitId = device.unitId ?? profile.modbus.unitId;
        if (unitId === undefined) problems.push(`${at('unitId')}: required, the profile "${profile.id}" has no default unit id`);
        bindings.push({ device, profile, ...(unitId !== undefined ? { unitId } : {}) });
        return;
      }
      case 'serial-lines':
        need('port');
        bindings.push({ device, profile });
        return;
      case 'opcua':
        need('endpoint');
        bindings.push({ device, profile });
    }
  });
  if (problems.length === unknownProfiles && unknownProfiles > 0) {
    throw new CosafeError('COSAFE_ERR_PROFILE_UNKNOWN', `${unknownProfiles} device${unknownProfiles === 1 ? ' names a profile' : 's name profiles'} that do${unknownProfiles === 1 ? 'es' : ''} not exist (see cosafe profiles list)`, { details: problems });
  }
  if (problems.length) throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', 'the devices of the gateway config are not usable', { details: problems });
  return bindings;
}
