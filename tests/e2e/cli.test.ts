import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COSAFE_BIN, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil } from '../helpers/processes.js';

describe('cosafe command line', () => {
  it('explains itself and each subcommand', async () => {
    const top = await runCosafe(['--help']);
    expect(top.code).toBe(0);
    for (const cmd of ['demo', 'run', 'hub', 'broker', 'gateway', 'cloud-sync', 'readings', 'check-config']) expect(top.stdout).toContain(cmd);
    const demo = await runCosafe(['demo', '--help']);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain('--influx-url');
    expect(demo.stdout).toContain('--port');
  });

  it('rejects a wrong flag with a message, not a stack trace', async () => {
    const r = await runCosafe(['demo', '--prot', '1884']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown option '--prot'");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const bad = await runCosafe(['demo', '--port', 'eighty']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--port must be a whole number');
  });

  it('ends quietly when its reader has gone (`cosafe profiles list | head`)', async () => {
    // The reading end closed before cosafe writes a byte: its write fails with EPIPE, as when `head` has had its lines.
    const child = spawn(process.execPath, [COSAFE_BIN, 'profiles', 'list'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('exports the Grafana dashboards for the InfluxDB of a config file, with no secret in the files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-cli-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, ['cloudSync:', '  influx:', '    url: http://influx.internal:8086', '    database: plant', '    username: grafana', '    password: s3cret-pw', ''].join('\n'));
    const r = await runCosafe(['dashboards', 'export', join(dir, 'out'), '--config', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('COSAFE_INFLUX_PASSWORD');
    const ds = readFileSync(join(dir, 'out/provisioning/datasources/cosafe.yaml'), 'utf8');
    expect(ds).toContain('url: http://influx.internal:8086');
    expect(ds).toContain('dbName: plant');
    expect(ds).toContain('basicAuthPassword: $COSAFE_INFLUX_PASSWORD');
    expect(ds).not.toContain('s3cret-pw');
    const provider = readFileSync(join(dir, 'out/provisioning/dashboards/cosafe.yaml'), 'utf8');
    expect(provider).toContain(`path: ${join(dir, 'out/dashboards')}`);
    expect(readdirSync(join(dir, 'out/dashboards')).sort()).toEqual(['cosafe-district.json', 'cosafe-hub.json', 'cosafe-site.json']);
    const bad = await runCosafe(['dashboards', 'export', join(dir, 'bad'), '--influx-url', 'influx.internal:8086']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--influx-url: "influx.internal:8086" is not an http(s) URL');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects an invalid config file naming the file, the line and the field', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cosafe-cli-')), 'site.yaml');
    writeFileSync(file, ['gateway:', '  devices:', '    - id: smoke-1', '      profile: no-such-profile', 'cloudSync:', '  fireDepartments:', '    - id: fd', '      url: not a url', '      secret: whsec_AAAA', ''].join('\n'));
    const r = await runCosafe(['run', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:8 cloudSync.fireDepartments[0].url: must be an http:// or https:// URL`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    writeFileSync(file, ['gateway:', '  devices:', '    - id: smoke-1', '      profile: no-such-profile', ''].join('\n'));
    const unknown = await runCosafe(['check-config', file]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('gateway.devices[0].profile: unknown profile "no-such-profile"');
  });

  it('validates profiles, printing every error as file:line path: message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-cli-profiles-'));
    writeFileSync(
      join(dir, 'co.yaml'),
      ['id: my-co', 'vendor: V', 'model: M', 'description: D', 'version: 1', 'transport: modbus-rtu', 'points:', '  - metric: carbon_monoxide', '    unit: ppm', '    read: { function: holding, address: 70000 }', ''].join('\n'),
    );
    const r = await runCosafe(['profiles', 'validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'co.yaml')}:8 points[0].range: a numeric data point needs a valid range`);
    expect(r.stderr).toContain(`${join(dir, 'co.yaml')}:10 points[0].read.address: `);
    const ok = await runCosafe(['profiles', 'validate', 'device-profiles/builtin']);
    expect(ok.stdout).toMatch(/^\d+ profiles valid$/m);
    const list = await runCosafe(['profiles', 'list']);
    expect(list.stdout).toMatch(/^serial-contact-id-panel\s+serial-lines\s+/m);
    const show = await runCosafe(['profiles', 'show', 'modbus-combustible-gas-detector']);
    expect(show.stdout).toContain('class: gas');
    const unknown = await runCosafe(['profiles', 'show', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no profile "nope"; known: ');
  });

  // Both ways bin/cosafe.js runs it: the build in dist/ (what npm ci leaves), and the sources through tsx (after an edit), worker threads included.
  it.each([
    ['from the build', {}],
    ['from the sources', { COSAFE_FROM_SOURCES: '1' }],
  ])('runs the demo on the embedded default and reads the readings back, %s', async (_, env: NodeJS.ProcessEnv) => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-demo-'));
    const demo = startCosafe(['demo', '--port', String(port), '--http-port', String(httpPort), '--data-dir', dataDir, '--interval', '200', '--alarm-every', '2'], env);
    const api = `http://127.0.0.1:${httpPort}`;
    try {
      await waitUntil('the demo to deliver a fire alarm', () => demo.output().includes('FIRE DEPARTMENT central received Alert'), 60_000, 100);
      // MQTT sensors, the three Modbus units on their bus and the OPC-UA building management system.
      const expected = ['temp-lobby', 'temp-kitchen', 'temp-storage', 'smoke-kitchen', 'gas-boiler', 'co-garage', 'riser-pressure', 'bms-sprinkler'];
      await waitUntil('readings of every demo device', async () => {
        const r = await runCosafe(['readings', '--api', api, '--data-dir', dataDir, '--json']);
        const devices = new Set((JSON.parse(r.stdout) as { device: string }[]).map((x) => x.device));
        return expected.every((d) => devices.has(d));
      }, 15_000, 250);
      await waitUntil('the panel alarm', () => demo.output().includes('"device":"fire-panel","msgType":"Alert"'), 10_000, 100);
      // The simulated dispatcher acknowledges over MQTT, and the hub journals who it was.
      await waitUntil('the acknowledgement', () => /"by":"@fire-department:central","operator":"demo dispatcher","channel":"mqtt","msg":"alarm acknowledged"/.test(demo.output()), 15_000, 100);
      // ... and the site's gateway is told, on its command topic.
      await waitUntil('the gateway to hear of it', () => /"by":"@fire-department:central","operator":"demo dispatcher".*"msg":"a fire department acknowledged the alarm"/.test(demo.output()), 15_000, 100);
      // The readings are not for anyone who reaches the port: without the hub's data directory (its operator token) or a credential, 401.
      const stranger = await runCosafe(['readings', '--api', api, '--data-dir', mkdtempSync(join(tmpdir(), 'cosafe-elsewhere-'))]);
      expect(stranger.code).toBe(1);
      expect(stranger.stderr).toContain('the hub answered HTTP 401: not logged in');
      const status = await runCosafe(['status', '--api', api, '--data-dir', dataDir]);
      expect(status.stdout).toMatch(/^gateway gw-1 \(site demo-site\): ONLINE/m);
      expect(status.stdout).toMatch(/^\s+modbus-rtu\s+connected/m);
      expect(status.stdout).toMatch(/^\s+riser-pressure\s+modbus-sprinkler-pressure-transmitter\s+\d+ s ago\s+ok$/m);
      const table = await runCosafe(['readings', '--api', api, '--data-dir', dataDir]);
      expect(table.stdout).toMatch(/^time\s+site\s+device\s+metric\s+value\s+unit\s+quality$/m);
      expect(table.stdout).toMatch(/demo-site\s+smoke-kitchen\s+smoke\s+[01]\s+bool\s+good/);
      const history = await runCosafe(['readings', '--api', api, '--data-dir', dataDir, '--device', 'temp-kitchen', '--metric', 'temperature', '--since', '10m', '--json']);
      expect((JSON.parse(history.stdout) as unknown[]).length).toBeGreaterThan(1);
    } finally {
      expect(await demo.stop('SIGINT'), demo.output().slice(-4000)).toBe(0);
    }
    expect(demo.output()).toContain('demo stopped');
    // Once the hub is gone the CLI says so, rather than printing an empty table.
    const gone = await runCosafe(['readings', '--api', api]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('COSAFE_ERR_HUB_UNREACHABLE');
  }, 180_000); // a whole demo, started and stopped: minutes on a loaded 2-core machine
});
