import { describe, expect, it } from 'vitest';
import { topics } from '../../../broker/contract/index.js';
import { buildConfig, type ConfigInput } from '../../../core/config.js';
import { CosafeError } from '../../../core/errors.js';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import { bindDevices } from '../../../edge/device-binding.js';

const profiles = loadBuiltinProfiles();
const bind = (gateway: ConfigInput['gateway']) => bindDevices(buildConfig({ gateway }).gateway, profiles);

function problems(fn: () => unknown): { code: string; details: readonly string[] } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CosafeError) return { code: err.code, details: err.details };
    throw err;
  }
  throw new Error('expected an error');
}

describe('binding the devices of a range', () => {
  it('gives each device of a range the topic a single device of its id has', () => {
    const bindings = bind({ site: 'tower-3', devices: [{ range: { from: 'th-001', to: 'th-250' }, profile: 'mqtt-temperature-humidity', location: 'offices' }, { id: 'smoke-1', profile: 'mqtt-smoke-detector' }] });
    expect(bindings).toHaveLength(251);
    expect(bindings[0]).toMatchObject({ device: { id: 'th-001', location: 'offices' }, profile: { id: 'mqtt-temperature-humidity' }, topic: topics.deviceUplink('tower-3', 'th-001') });
    expect(bindings[249]!.topic).toBe(topics.deviceUplink('tower-3', 'th-250'));
    expect(new Set(bindings.map((b) => b.topic)).size).toBe(251);
    expect(bindings[250]!.topic).toBe(bindDevices(buildConfig({ gateway: { site: 'tower-3', devices: [{ id: 'smoke-1', profile: 'mqtt-smoke-detector' }] } }).gateway, profiles)[0]!.topic);
  });

  it("puts each device of a bridge's range under the bridge, by its name there", () => {
    const bindings = bind({ bridges: [{ id: 'z2m', prefix: 'zigbee2mqtt' }], devices: [{ range: { from: 'smoke-1', to: 'smoke-3' }, profile: 'zigbee2mqtt-smoke-detector', bridge: 'z2m' }] });
    expect(bindings.map((b) => b.topic)).toEqual(['zigbee2mqtt/smoke-1', 'zigbee2mqtt/smoke-2', 'zigbee2mqtt/smoke-3']);
  });

  it('reports a problem of a range once, at the range, not once per device', () => {
    expect(problems(() => bind({ devices: [{ range: { from: 'th-1', to: 'th-500' }, profile: 'mqtt-temperatur-humidity' }] }))).toEqual({
      code: 'COSAFE_ERR_PROFILE_UNKNOWN',
      details: [expect.stringMatching(/^gateway\.devices\[0\]\.profile: unknown profile "mqtt-temperatur-humidity"/)],
    });
    // A Modbus unit or a panel needs its own port or unit id, which a range cannot give each of its devices.
    expect(problems(() => bind({ devices: [{ range: { from: 'gas-1', to: 'gas-8' }, profile: 'modbus-combustible-gas-detector' }] }))).toEqual({
      code: 'COSAFE_ERR_CONFIG_INVALID',
      details: ['gateway.devices[0].range: a range names MQTT devices, each on its own topic; profile "modbus-combustible-gas-detector" speaks modbus-rtu: list these devices one by one (gas-1 to gas-8)'],
    });
  });
});
