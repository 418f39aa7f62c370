import { topics } from '../broker/contract/index.js';
import type { Config, DeviceConfig } from '../core/config.js';
import { describeRange, expandDevices } from '../core/device-ranges.js';
import { CosafeError } from '../core/errors.js';
import { formatPath } from '../core/yaml-file.js';
import type { Profile } from '../device-profiles/schema.js';

export type BridgeConfig = Config['gateway']['bridges'][number];

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
 * Joins each configured device (a range's: each of its devices) with its
 * profile and checks that it has the address its transport needs. Every
 * problem is reported at once, a range's once for the range; an unknown
 * profile is COSAFE_ERR_PROFILE_UNKNOWN (when it is the only kind of problem).
 */
export function bindDevices(config: Config['gateway'], profiles: ReadonlyMap<string, Profile>, place: ConfigPlace = formatPath): DeviceBinding[] {
  // A Set: the devices of a range share their fields, and so their problems.
  const problems = new Set<string>();
  const unknown = new Set<string>();
  const bindings: DeviceBinding[] = [];
  for (const { device, entry, range } of expandDevices(config.devices)) {
    const at = (field: string) => place(['gateway', 'devices', entry, field]);
    const profile = profiles.get(device.profile);
    if (!profile) {
      const problem = `${at('profile')}: unknown profile "${device.profile}" (COSAFE_ERR_PROFILE_UNKNOWN); known: ${[...profiles.keys()].sort().join(', ')}`;
      unknown.add(problem);
      problems.add(problem);
      continue;
    }
    if (range && profile.transport !== 'mqtt') {
      // Serial, Modbus and OPC-UA devices each need their own port, unit or endpoint, which a range cannot share.
      problems.add(`${at('range')}: a range names MQTT devices, each on its own topic; profile "${profile.id}" speaks ${profile.transport}: list these devices one by one (${describeRange(range)})`);
      continue;
    }
    bindings.push(bindOne(config, device, profile, at, (text) => problems.add(text)));
  }
  if (problems.size === unknown.size && unknown.size > 0) {
    const n = unknown.size;
    throw new CosafeError('COSAFE_ERR_PROFILE_UNKNOWN', `${n} device entr${n === 1 ? 'y names a profile' : 'ies name profiles'} that do${n === 1 ? 'es' : ''} not exist (see cosafe profiles list)`, { details: [...unknown] });
  }
  if (problems.size) throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', 'the devices of the gateway config are not usable', { details: [...problems] });
  return bindings;
}

/** One device with its profile's transport: the address it is read at, or the problems that leave it without one. */
function bindOne(config: Config['gateway'], device: DeviceConfig, profile: Profile, at: (field: string) => string, problem: (text: string) => void): DeviceBinding {
  if (device.bridge !== undefined && profile.transport !== 'mqtt') problem(`${at('bridge')}: a bridge publishes over MQTT; profile "${profile.id}" speaks ${profile.transport}`);
  const need = (field: 'port' | 'endpoint') => {
    if (device[field] === undefined) problem(`${at(field)}: required for a ${profile.transport} device (profile "${profile.id}")`);
  };
  switch (profile.transport) {
    case 'mqtt': {
      const bridge = config.bridges.find((b) => b.id === device.bridge);
      if (bridge) return { device, profile, bridge, topic: `${bridge.prefix}/${device.name ?? device.id}` };
      return { device, profile, topic: device.topic ?? topics.deviceUplink(config.site, device.id) };
    }
    case 'modbus-rtu': {
      need('port');
      const unitId = device.unitId ?? profile.modbus.unitId;
      if (unitId === undefined) problem(`${at('unitId')}: required, the profile "${profile.id}" has no default unit id`);
      return { device, profile, ...(unitId !== undefined ? { unitId } : {}) };
    }
    case 'serial-lines':
      need('port');
      return { device, profile };
    case 'opcua':
      need('endpoint');
      return { device, profile };
  }
}
