import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfigFile } from '../../../core/config.js';
import { expandDevices, MAX_RANGE_DEVICES, parseRange, rangeCounts } from '../../../core/device-ranges.js';
import { CosafeError } from '../../../core/errors.js';

function file(lines: string[]): string {
  const f = join(mkdtempSync(join(tmpdir(), 'cosafe-ranges-')), 'site.yaml');
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof CosafeError) return err.details;
    throw err;
  }
  throw new Error('expected an error');
}

const ids = (from: string, to: string) => expandDevices(buildConfig({ gateway: { devices: [{ range: { from, to }, profile: 'mqtt-temperature-humidity' }] } }).gateway.devices).map((d) => d.device.id);

describe('device ranges in gateway.devices', () => {
  it('names every device from the first id to the last, zero padding kept, beside single entries', () => {
    const f = file([
      'gateway:',
      '  site: tower-3',
      '  devices:',
      '    - id: smoke-lobby',
      '      profile: mqtt-smoke-detector',
      '    - range: { from: th-0001, to: th-1000 }',
      '      profile: mqtt-temperature-humidity',
      '      location: floors 1-20',
    ]);
    const devices = expandDevices(loadConfigFile(f).gateway.devices).map((d) => d.device);
    expect(devices).toHaveLength(1001);
    expect(devices[0]).toEqual({ id: 'smoke-lobby', profile: 'mqtt-smoke-detector' });
    expect(devices[1]).toEqual({ id: 'th-0001', profile: 'mqtt-temperature-humidity', location: 'floors 1-20' });
    expect(devices[10]!.id).toBe('th-0010');
    expect(devices[1000]).toEqual({ id: 'th-1000', profile: 'mqtt-temperature-humidity', location: 'floors 1-20' });
    expect(new Set(devices.map((d) => d.id)).size).toBe(1001);
  });

  it('numbers without padding when neither end is padded, and takes ids that are only digits', () => {
    expect(ids('th-1', 'th-12')).toEqual(['th-1', 'th-2', 'th-3', 'th-4', 'th-5', 'th-6', 'th-7', 'th-8', 'th-9', 'th-10', 'th-11', 'th-12']);
    expect(ids('0098', '0101')).toEqual(['0098', '0099', '0100', '0101']);
    expect(ids('floor2.room7', 'floor2.room9')).toEqual(['floor2.room7', 'floor2.room8', 'floor2.room9']);
  });

  it('gives each device of a range its own topic and bridge name through {id}', () => {
    const c = buildConfig({
      gateway: {
        bridges: [{ id: 'z2m', prefix: 'zigbee2mqtt' }],
        devices: [
          { range: { from: 'th-01', to: 'th-03' }, profile: 'mqtt-temperature-humidity', topic: 'acme/{id}/telemetry' },
          { range: { from: 'smoke-1', to: 'smoke-2' }, profile: 'zigbee2mqtt-smoke-detector', bridge: 'z2m', name: 'Smoke {id}' },
        ],
      },
    });
    const devices = expandDevices(c.gateway.devices).map((d) => d.device);
    expect(devices.map((d) => d.topic ?? d.name)).toEqual(['acme/th-01/telemetry', 'acme/th-02/telemetry', 'acme/th-03/telemetry', 'Smoke smoke-1', 'Smoke smoke-2']);
  });

  it('refuses a range it cannot number, each error at its line', () => {
    const f = file([
      'gateway:',
      '  devices:',
      '    - range: { from: th-0001, to: hum-0100 }',
      '      profile: mqtt-temperature-humidity',
      '    - range: { from: th-0100, to: th-0001 }',
      '      profile: mqtt-temperature-humidity',
      '    - range: { from: th-0001, to: th-10000 }',
      '      profile: mqtt-temperature-humidity',
      '    - range: { from: th-a, to: th-b }',
      '      profile: mqtt-temperature-humidity',
      `    - range: { from: th-1, to: th-${MAX_RANGE_DEVICES + 1} }`,
      '      profile: mqtt-temperature-humidity',
      '    - range: { from: th-1, to: th-3 }',
      '      profile: mqtt-temperature-humidity',
      '      topic: acme/sensors',
      '    - range: { from: th-1 }',
      '      profile: mqtt-temperature-humidity',
      '      port: /dev/ttyUSB0',
    ]);
    expect(problems(() => loadConfigFile(f))).toEqual([
      `${f}:3 gateway.devices[0].range: from and to must differ only in their number: "th-" and "hum-" are different prefixes`,
      `${f}:5 gateway.devices[1].range: "th-0001" comes before "th-0100": give the lower one as from`,
      `${f}:7 gateway.devices[2].range: "th-0001" and "th-10000" must have as many digits (zero-padded: 4 and 5), so every id has the same width`,
      `${f}:9 gateway.devices[3].range: from and to must end in a number (th-0001 to th-1000); "th-a" does not`,
      `${f}:11 gateway.devices[4].range: 10,001 devices; a range names at most 10,000 (split it, or check the numbers)`,
      `${f}:15 gateway.devices[5].topic: every device of a range needs its own topic: put {id} in it (acme/{id}/telemetry)`,
      `${f}:16 gateway.devices[6].range.to: Invalid input: expected string, received undefined`,
      expect.stringMatching(new RegExp(`^${f}:16 gateway.devices\\[6\\]: Unrecognized key: "port"`)),
    ]);
  });

  it('applies the checks of a single device to a range: an unknown bridge, a topic and a bridge at once', () => {
    expect(
      problems(() => buildConfig({ gateway: { devices: [{ range: { from: 's-1', to: 's-9' }, profile: 'zigbee2mqtt-smoke-detector', bridge: 'nope', topic: 'x/{id}' }] } })),
    ).toEqual(['config gateway.devices[0].bridge: no bridge "nope" in gateway.bridges', 'config gateway.devices[0].topic: give bridge (the topic is <prefix>/<name>) or topic, not both']);
  });

  it('names both places of a device listed twice, once per pair of entries', () => {
    const f = file([
      'gateway:',
      '  devices:',
      '    - range: { from: th-0001, to: th-0100 }',
      '      profile: mqtt-temperature-humidity',
      '    - id: th-0042',
      '      profile: mqtt-temperature-humidity',
      '    - range: { from: th-0091, to: th-0200 }',
      '      profile: mqtt-temperature-humidity',
      '    - id: smoke-1',
      '      profile: mqtt-smoke-detector',
      '    - id: smoke-1',
      '      profile: mqtt-smoke-detector',
      '    - range: { from: smoke-0, to: smoke-2 }',
      '      profile: mqtt-smoke-detector',
    ]);
    expect(problems(() => loadConfigFile(f))).toEqual([
      `${f}:5 gateway.devices[1].id: device "th-0042" is listed twice: here and in the range gateway.devices[0] (th-0001 to th-0100)`,
      `${f}:7 gateway.devices[2].range: devices "th-0091" and 9 more are listed twice: here and in the range gateway.devices[0] (th-0001 to th-0100)`,
      `${f}:11 gateway.devices[4].id: device "smoke-1" is listed twice: here and in gateway.devices[3]`,
      `${f}:13 gateway.devices[5].range: device "smoke-1" is listed twice: here and in gateway.devices[3]`,
    ]);
  });

  it('counts the devices of each range, for check-config', () => {
    const c = buildConfig({
      gateway: {
        devices: [
          { id: 'smoke-1', profile: 'mqtt-smoke-detector' },
          { range: { from: 'th-0001', to: 'th-1000' }, profile: 'mqtt-temperature-humidity' },
          { range: { from: 'door-1', to: 'door-12' }, profile: 'mqtt-exit-door-monitor' },
        ],
      },
    });
    expect(rangeCounts(c.gateway.devices).map((r) => [r.entry, r.count])).toEqual([
      [1, 1000],
      [2, 12],
    ]);
  });

  it('reads a range without a config, as the schema does', () => {
    expect(parseRange({ from: 'th-0001', to: 'th-1000' })).toEqual({ prefix: 'th-', first: 1, last: 1000, width: 4, count: 1000 });
    expect(parseRange({ from: 'a9', to: 'a9' })).toEqual({ prefix: 'a', first: 9, last: 9, width: 0, count: 1 });
    expect(parseRange({ from: 'th-99999999999999999', to: 'th-99999999999999999' })).toBe('the numbers of from and to are too large');
  });
});
