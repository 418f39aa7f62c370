import { createServer, type Server } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCosafe } from '../helpers/cosafe-cli.js';
import { freePort } from '../helpers/processes.js';

/** What a building owner sees from `cosafe` when a config, a profile or a command line is wrong. */
const dir = mkdtempSync(join(tmpdir(), 'cosafe-config-errors-'));
const write = (name: string, lines: string[]) => {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
};
const noStackTrace = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at |unexpected error/);
const servers: Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

describe('cosafe check-config and run: a wrong config says what and where', () => {
  it('names a profileDir that does not exist, at its line, instead of crashing', async () => {
    const file = write('no-profiles.yaml', ['gateway:', '  site: bakery-12', '  profileDir: ./my-profiles', '  devices: []']);
    const r = await runCosafe(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:3 gateway.profileDir: no directory ${join(dir, 'my-profiles')}`);
    noStackTrace(r.stderr);
  });

  it('reports a YAML indentation error at its own line', async () => {
    const file = write('indent.yaml', ['gateway:', '  site: bakery-12', '  devices:', '    - id: smoke-1', '      profile: mqtt-smoke-detector', '     location: oven']);
    const r = await runCosafe(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${file}:6 `));
  });

  it('reports an unknown profile as COSAFE_ERR_PROFILE_UNKNOWN, with its line', async () => {
    const file = write('unknown.yaml', ['gateway:', '  site: bakery-12', '  devices:', '    - id: smoke-1', '      profile: mqtt-smoke-detector', '    - id: temp-1', '      profile: mqtt-temperatur-humidity']);
    for (const command of [['check-config', file], ['run', '--config', file]]) {
      const r = await runCosafe(command);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('COSAFE_ERR_PROFILE_UNKNOWN');
      expect(r.stderr).toContain(`${file}:7 gateway.devices[1].profile: unknown profile "mqtt-temperatur-humidity"`);
      noStackTrace(r.stderr);
    }
  });

  it('names the allowed values of an enum with a typo, in a panel rule of a profile and in the config', async () => {
    const profiles = join(dir, 'profiles');
    mkdirSync(profiles);
    writeFileSync(
      join(profiles, 'panel.yaml'),
      stringify({
        id: 'my-panel',
        vendor: 'V',
        model: 'M',
        description: 'D',
        version: 1,
        transport: 'serial-lines',
        lines: [
          { match: '^RESET', resetAll: true },
          { match: '^FIRE ZONE (?<zone>\\d+)', signal: { key: 'fire-{zone}', class: 'fire', state: 'active' } },
          { match: '^FAULT (?<zone>\\d+)', signal: { key: 'fault-{zome}', class: 'troubel', state: 'active' } },
        ],
      }),
    );
    const validate = await runCosafe(['profiles', 'validate', profiles]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toMatch(/panel\.yaml:\d+ lines\[2\]\.signal\.class: Invalid option: expected one of "fire"\|"gas"\|"co"\|"waterflow"\|"intrusion"\|"supervisory"\|"trouble"/);
    const file = write('enum.yaml', ['log:', '  level: verbose', 'gateway:', `  profileDir: ${profiles}`]);
    const r = await runCosafe(['check-config', file]);
    expect(r.stderr).toContain(`${file}:2 log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"`);
  });

  it('refuses a panel rule key naming a group its pattern lacks, in profiles validate and check-config', async () => {
    const profiles = join(dir, 'key-profiles');
    mkdirSync(profiles);
    const profile = join(profiles, 'panel.yaml');
    writeFileSync(
      profile,
      stringify({ id: 'key-panel', vendor: 'V', model: 'M', description: 'D', version: 1, transport: 'serial-lines', lines: [{ match: '^FAULT (?<zone>\\d+)', signal: { key: 'fault-{loop}', class: 'trouble', state: 'active' } }] }),
    );
    const validate = await runCosafe(['profiles', 'validate', profiles]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toMatch(new RegExp(`${profile}:\\d+ lines\\[0\\]\\.signal\\.key: the key uses \\{loop\\}, but the pattern has no group "loop"`));
    const file = write('key.yaml', ['gateway:', `  profileDir: ${profiles}`, '  devices:', '    - { id: panel, profile: key-panel, port: /dev/ttyUSB0 }']);
    const check = await runCosafe(['check-config', file]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('the key uses {loop}');
  });

  it('counts the devices of each range, and names both places of a device a range and an entry both name', async () => {
    const lines = ['gateway:', '  site: tower-3', '  devices:', '    - id: smoke-lobby', '      profile: mqtt-smoke-detector', '    - range: { from: th-0001, to: th-1000 }', '      profile: mqtt-temperature-humidity'];
    const ok = write('range.yaml', lines);
    const r = await runCosafe(['check-config', ok]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${ok}: ok (1,001 devices, 0 fire departments)`);
    expect(r.stdout).toContain(`  ${ok}:6 gateway.devices[1]: th-0001 to th-1000, 1,000 devices of mqtt-temperature-humidity`);
    const twice = write('range-twice.yaml', [...lines, '    - id: th-0500', '      profile: mqtt-temperature-humidity']);
    const bad = await runCosafe(['check-config', twice]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${twice}:8 gateway.devices[2].id: device "th-0500" is listed twice: here and in the range gateway.devices[1] (th-0001 to th-1000)`);
    noStackTrace(bad.stderr);
  });

  it('names the config field, not a flag `cosafe run` does not have, when the broker port is taken', async () => {
    const port = await freePort();
    await new Promise<void>((resolve) => servers.push(createServer().listen(port, '127.0.0.1', resolve)));
    const file = write('busy.yaml', ['dataDir: busy-state', 'broker:', '  host: 127.0.0.1', `  port: ${port}`, 'http:', `  port: ${await freePort()}`]);
    const run = await runCosafe(['run', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`broker port ${port} is already in use; choose another in the config file: broker.port`);
    expect(run.stderr).not.toContain('--port');
    const help = await runCosafe(['run', '--help']);
    expect(help.stdout).not.toContain('--port');
    const demo = await runCosafe(['demo', '--port', String(port), '--http-port', String(await freePort()), '--data-dir', join(dir, 'demo-state')], 60_000);
    expect(demo.code).toBe(1);
    expect(demo.stderr).toContain(`broker port ${port} is already in use; choose another with --port`);
  });
});

describe('cosafe credentials add: a flag given twice', () => {
  it('refuses --topic twice instead of keeping the last one silently', async () => {
    const r = await runCosafe(['credentials', 'add', '--role', 'device', '--site', 'bakery-12', '--device', 'store', '--topic', 'zigbee2mqtt/a', '--topic', 'zigbee2mqtt/b', '--data-dir', join(dir, 'creds')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--topic is given twice ("zigbee2mqtt/a", "zigbee2mqtt/b")');
    const list = await runCosafe(['credentials', 'list', '--data-dir', join(dir, 'creds')]);
    expect(list.stdout).not.toContain('bakery-12.store');
  });
});
