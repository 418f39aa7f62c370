import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import { buildConfig, type DeviceConfig } from '../../core/config.js';
import type { DecodeOutcome } from '../../device-profiles/codecs/index.js';
import { loadBuiltinProfiles } from '../../device-profiles/loader.js';
import type { Profile } from '../../device-profiles/schema.js';
import type { Adapter } from '../../edge/adapters/adapter.js';
import type { OpcuaEndpointHealth } from '../../edge/adapters/opcua-endpoint.js';
import { createOpcuaAdapter } from '../../edge/adapters/opcua.js';
import { bindDevices } from '../../edge/device-binding.js';
import { waitUntil } from '../helpers/processes.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { OpcuaSprinklerServer } from '../simulators/opcua-sprinkler-server.js';

/**
 * The OPC-UA adapter against a real node-opcua server (the sprinkler BMS
 * simulator): what a user would notice is whether readings arrive, how fast a
 * change shows, whether they come back after the server restarts, and what the
 * gateway says when something is wrong.
 */
const PROFILE = 'opcua-bms-sprinkler-system';
const METRICS = ['flow_switch', 'pump_running', 'fault', 'water_pressure', 'tank_level'];
// Short retry delays keep the test quick; production waits 1 s doubling to 30 s.
const timing = { initialDelayMs: 250, maxDelayMs: 1000, keepAliveMs: 1000, staleAfterMs: 5000, repairTimeoutMs: 10_000, closeTimeoutMs: 1000 };

interface Received {
  device: string;
  outcome: DecodeOutcome;
  at: number;
}

interface Running {
  adapter: Adapter;
  received: Received[];
  logs: Record<string, unknown>[];
  stateDir: string;
  endpoint(): OpcuaEndpointHealth;
  values(metric: string, since?: number): number[];
  stop(): Promise<void>;
}

const running: Running[] = [];
const dirs: string[] = [];
const builtin = loadBuiltinProfiles();

async function startAdapter(devices: DeviceConfig[], options: { profiles?: Map<string, Profile>; beforeStart?: (stateDir: string) => void } = {}): Promise<Running> {
  const stateDir = mkdtempSync(join(tmpdir(), 'cosafe-opcua-gw-'));
  dirs.push(stateDir);
  options.beforeStart?.(stateDir);
  const config = buildConfig({ gateway: { site: 'pump-room', devices } });
  const bindings = bindDevices(config.gateway, options.profiles ?? builtin);
  const received: Received[] = [];
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const adapter = createOpcuaAdapter(
    { logger, clock: systemClock, devices: bindings, brokerUrl: 'mqtt://unused', stateDir, onDecoded: (b, outcome) => void received.push({ device: b.device.id, outcome, at: Date.now() }) },
    { timing },
  );
  const abort = new AbortController();
  await adapter.start(abort.signal);
  const r: Running = {
    adapter,
    received,
    logs,
    stateDir,
    endpoint: () => adapter.health().endpoints![0] as OpcuaEndpointHealth,
    values: (metric, since = 0) => received.filter((x) => x.at >= since).flatMap((x) => x.outcome.values.filter((v) => v.metric === metric).map((v) => v.value)),
    async stop() {
      abort.abort();
      await adapter.stop();
    },
  };
  running.push(r);
  return r;
}

/** The lines a person reads (info and above), without node-opcua's own debug output. */
const messages = (r: Running, minLevel = 30) => r.logs.filter((l) => (l.level as number) >= minLevel).map((l) => String(l.msg));

const plain = new OpcuaSprinklerServer({ simulateEveryMs: 200 });
const secure = new OpcuaSprinklerServer({ simulateEveryMs: 200, security: ['SignAndEncrypt'], user: { username: 'bms-reader', password: 'correct horse' } });

beforeAll(async () => {
  await Promise.all([plain.start(), secure.start()]);
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
  await Promise.all([plain.dispose(), secure.dispose()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('OPC-UA adapter, no security, anonymous', () => {
  let gw: Running;

  beforeAll(async () => {
    gw = await startAdapter([{ id: 'pump-room', profile: PROFILE, endpoint: plain.endpointUrl, location: 'basement pump room' }]);
  });

  it('delivers readings of all five points', async () => {
    await waitUntil('a reading of every point', () => METRICS.every((m) => gw.values(m).length > 0), 10_000);
    expect(gw.adapter.health()).toMatchObject({ kind: 'opcua', connected: true });
    expect(gw.values('water_pressure').every((v) => v > 0 && v < 25)).toBe(true);
    expect(gw.endpoint()).toMatchObject({ address: plain.endpointUrl, state: 'connected', devices: ['pump-room'], securityMode: 'None', user: 'anonymous' });
  });

  it('is told of a change by the server, within a second (a subscription, not polling)', async () => {
    await waitUntil('the connection', () => gw.adapter.health().connected);
    // What the gateway asked the server for, as the server holds it: every point
    // monitored, changes published at most a second apart. (How fast that is in
    // milliseconds is measured in bench/, not asserted here.)
    await waitUntil('the subscription on the server', () => plain.subscriptions().some((s) => s.monitoredItems === METRICS.length && s.publishingIntervalMs <= 1000));
    const from = gw.received.length;
    const flowSwitch = () => gw.received.slice(from).flatMap((x) => x.outcome.values.filter((v) => v.metric === 'flow_switch').map((v) => v.value));
    plain.setValue('Sprinkler.AlarmValve.FlowSwitch', true);
    await waitUntil('flow switch on', () => flowSwitch().includes(1), 10_000, 10);
    plain.setValue('Sprinkler.AlarmValve.FlowSwitch', false);
    await waitUntil('flow switch off', () => flowSwitch().at(-1) === 0, 10_000, 10);
  });

  it('reports a bad status as an error, not a reading, and recovers when it is good again', async () => {
    const t0 = Date.now();
    const node = 'ns=2;s=Sprinkler.Pump.DischargePressure';
    plain.setBadStatus('Sprinkler.Pump.DischargePressure');
    await waitUntil('the bad status', () => gw.received.some((x) => x.at >= t0 && x.outcome.errors.some((e) => e.startsWith(`${node}:`))), 5000);
    expect(gw.adapter.health().errors.badStatus).toBeGreaterThanOrEqual(1);
    expect(gw.endpoint().badStatus).toEqual({ [node]: 'BadSensorFailure' });
    expect(gw.logs.filter((l) => l.code === 'COSAFE_ERR_OPCUA_BAD_STATUS')).toHaveLength(1);
    plain.setValue('Sprinkler.Pump.DischargePressure', 3.2);
    await waitUntil('the pressure again', () => gw.values('water_pressure', t0).includes(3.2), 5000);
    expect(gw.endpoint().badStatus).toEqual({});
  });

  it('heals after the server restarts, without restarting the adapter', async () => {
    const before = gw.endpoint();
    await plain.restart(1500);
    // Readings again, and a change made after the restart arrives: the subscription is live, not stale.
    const from = gw.received.length;
    await waitUntil('readings after the restart', () => gw.received.slice(from).some((x) => x.outcome.values.some((v) => v.metric === 'water_pressure')) && gw.adapter.health().connected, 15_000);
    const t1 = Date.now();
    plain.setValue('Sprinkler.Pump.Fault', true);
    await waitUntil('the fault set after the restart', () => gw.values('fault', t1).includes(1), 3000, 10);
    plain.setValue('Sprinkler.Pump.Fault', false);
    const after = gw.endpoint();
    expect(after.state).toBe('connected');
    expect(after.reconnects + after.rebuilds).toBeGreaterThan(before.reconnects + before.rebuilds);
    expect(gw.adapter.health().errors.connect).toBeGreaterThanOrEqual(1);
    const said = messages(gw).slice(-20);
    expect(said).toContain('OPC-UA connection lost; reconnecting');
    expect(said.some((m) => /re-established|rebuilding|OPC-UA connected/.test(m))).toBe(true);
  });
});

describe('OPC-UA adapter, the network between gateway and server fails', () => {
  let proxy: TcpProxy;
  let gw: Running;

  beforeAll(async () => {
    proxy = new TcpProxy('127.0.0.1', Number(new URL(plain.endpointUrl.replace('opc.tcp', 'http')).port));
    await proxy.start();
    gw = await startAdapter([{ id: 'pump-room-net', profile: PROFILE, endpoint: `opc.tcp://${proxy.url}` }]);
    await waitUntil('a first reading', () => gw.values('water_pressure').length > 0, 10_000);
  });

  afterAll(async () => {
    await gw.stop();
    await proxy.stop();
  });

  it('connections reset: the session on the server is reactivated, the subscription goes on', async () => {
    const before = gw.endpoint();
    proxy.cut();
    await waitUntil('the repair', () => gw.endpoint().reconnects > before.reconnects && gw.adapter.health().connected, 10_000);
    const t0 = Date.now();
    plain.setValue('Sprinkler.Pump.Running', true);
    await waitUntil('pump running', () => gw.values('pump_running', t0).includes(1), 3000, 10);
    plain.setValue('Sprinkler.Pump.Running', false);
    const said = messages(gw);
    expect(said).toContain('OPC-UA session reactivated on the new connection');
    expect(said).not.toContain('OPC-UA subscription recreated');
  });

  it('a silent, half-open connection: noticed by the missing keep-alives, then rebuilt', async () => {
    const before = gw.endpoint();
    proxy.blackhole();
    // Nothing tells the client: only the subscription's missing keep-alives do (staleAfterMs: 5 s here).
    await waitUntil('the dead link noticed', () => !gw.adapter.health().connected, 15_000, 100);
    proxy.heal();
    await waitUntil('the connection back', () => gw.adapter.health().connected, 15_000, 100);
    const t0 = Date.now();
    plain.setValue('Sprinkler.Pump.Running', true);
    await waitUntil('pump running', () => gw.values('pump_running', t0).includes(1), 3000, 10);
    plain.setValue('Sprinkler.Pump.Running', false);
    const after = gw.endpoint();
    expect(after.reconnects + after.rebuilds).toBeGreaterThan(before.reconnects + before.rebuilds);
  });
});

describe('OPC-UA adapter, problems a user must be told about', () => {
  it('a server that is not up yet: retried with backoff until it is', async () => {
    const late = new OpcuaSprinklerServer({ simulateEveryMs: 0 });
    await late.start();
    const url = late.endpointUrl;
    await late.stop();
    try {
      const gw = await startAdapter([{ id: 'pump-room-late', profile: PROFILE, endpoint: url }]);
      await waitUntil('refused connections', () => (gw.adapter.health().errors.connect ?? 0) >= 2, 30_000);
      expect(gw.endpoint().lastError).toMatch(/^cannot connect to opc\.tcp:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
      await late.start();
      await waitUntil('a reading of every point', () => METRICS.every((m) => gw.values(m).length > 0), 15_000);
      expect(gw.endpoint()).toMatchObject({ state: 'connected' });
      expect(gw.endpoint().lastError).toBeUndefined();
      await gw.stop();
    } finally {
      await late.dispose();
    }
  });


  it('a node id the server does not have: a counted error naming it, and the other points keep reporting', async () => {
    const base = builtin.get(PROFILE)!;
    if (base.transport !== 'opcua') throw new Error('expected an opcua profile');
    const missing = 'ns=2;s=Sprinkler.Tank.LevelTypo';
    const profile: Profile = { ...base, id: 'sprinkler-with-typo', points: base.points.map((p) => (p.metric === 'tank_level' ? { ...p, read: { ...p.read, nodeId: missing } } : p)) };
    const gw = await startAdapter([{ id: 'pump-room-2', profile: profile.id, endpoint: plain.endpointUrl }], { profiles: new Map([[profile.id, profile]]) });
    await waitUntil('the four good points', () => METRICS.filter((m) => m !== 'tank_level').every((m) => gw.values(m).length > 0), 10_000);
    await waitUntil('the node error', () => (gw.adapter.health().errors.node ?? 0) >= 1, 5000);
    expect(gw.endpoint().badNodes[missing]).toMatch(/BadNodeIdUnknown/);
    expect(gw.adapter.health().connected).toBe(true);
    const line = gw.logs.find((l) => l.code === 'COSAFE_ERR_OPCUA_NODE');
    expect(line).toMatchObject({ nodeId: missing, device: 'pump-room-2' });
    expect(String(line!.msg)).toContain(missing);
    await gw.stop();
  });

  it('a wrong password: a clear error state, counted and logged once, retried with backoff, no crash', async () => {
    const gw = await startAdapter([{ id: 'pump-room-3', profile: PROFILE, endpoint: secure.endpointUrl, opcua: { securityMode: 'SignAndEncrypt', username: 'bms-reader', password: 'wrong' } }], {
      beforeStart: (stateDir) => trustServer(stateDir, secure),
    });
    await waitUntil('three refused sessions', () => (gw.adapter.health().errors.session ?? 0) >= 3, 10_000);
    const h = gw.adapter.health();
    expect(h.connected).toBe(false);
    expect(gw.received).toEqual([]);
    expect(gw.endpoint().lastError).toMatch(/refused the user: check opcua.username and opcua.password .*BadUserAccessDenied/);
    expect(['backoff', 'connecting']).toContain(gw.endpoint().state);
    // One error line, not one per attempt.
    expect(gw.logs.filter((l) => l.code === 'COSAFE_ERR_OPCUA_SESSION' && (l.level as number) >= 50)).toHaveLength(1);
    await gw.stop();
  });

  it('an untrusted server certificate: the operator is told where to trust it, and trusting it is enough', async () => {
    const gw = await startAdapter([{ id: 'pump-room-4', profile: PROFILE, endpoint: secure.endpointUrl, opcua: { securityMode: 'SignAndEncrypt', username: 'bms-reader', password: 'correct horse' } }]);
    await waitUntil('the refused certificate', () => (gw.adapter.health().errors.connect ?? 0) >= 1, 10_000);
    const pki = join(gw.stateDir, 'opcua-pki');
    expect(gw.endpoint().lastError).toContain(`move it from ${pki}/rejected/ to ${pki}/trusted/certs/`);
    expect(gw.logs.some((l) => l.code === 'COSAFE_ERR_OPCUA_SECURITY')).toBe(true);
    expect(gw.received).toEqual([]);
    // What the operator does, while the gateway keeps running.
    // The certificate manager files the rejected certificate on its own time.
    await waitUntil('the certificate in rejected/', () => readdirSync(join(pki, 'rejected')).length > 0, 5000);
    const rejected = readdirSync(join(pki, 'rejected'));
    expect(rejected).toHaveLength(1);
    renameSync(join(pki, 'rejected', rejected[0]!), join(pki, 'trusted', 'certs', rejected[0]!));
    await waitUntil('readings once the certificate is trusted', () => gw.values('water_pressure').length > 0, 15_000);
    await gw.stop();
  });
});

describe('OPC-UA adapter, SignAndEncrypt with Basic256Sha256 and a user', () => {
  it('reads every point over an encrypted channel, with a certificate made for the test', async () => {
    const certs = await makeClientCertificate('urn:cosafe:test:gateway');
    const opcua = { securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', username: 'bms-reader', password: 'correct horse', ...certs } as const;
    const gw = await startAdapter([{ id: 'pump-room-5', profile: PROFILE, endpoint: secure.endpointUrl, opcua }], { beforeStart: (stateDir) => trustServer(stateDir, secure) });
    await waitUntil('a reading of every point', () => METRICS.every((m) => gw.values(m).length > 0), 15_000);
    expect(gw.endpoint()).toMatchObject({ state: 'connected', securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', user: 'bms-reader' });
    // The session was opened with the given certificate, not one the gateway made itself.
    expect(secure.clientApplicationUris()).toContain('urn:cosafe:test:gateway');
    const t0 = Date.now();
    secure.setValue('Sprinkler.Pump.Running', true);
    await waitUntil('pump running', () => gw.values('pump_running', t0).includes(1), 3000, 10);
    await gw.stop();
  });

  it('a server reinstalled with a new certificate: the gateway says so, and heals once it is trusted', async () => {
    const gw = await startAdapter([{ id: 'pump-room-6', profile: PROFILE, endpoint: secure.endpointUrl, opcua: { securityMode: 'SignAndEncrypt', username: 'bms-reader', password: 'correct horse' } }], {
      beforeStart: (stateDir) => trustServer(stateDir, secure),
    });
    await waitUntil('a first reading', () => gw.values('water_pressure').length > 0, 10_000);
    const port = Number(secure.endpointUrl.split(':').at(-1));
    await secure.stop();
    const reinstalled = new OpcuaSprinklerServer({ port, simulateEveryMs: 200, security: ['SignAndEncrypt'], user: { username: 'bms-reader', password: 'correct horse' } });
    try {
      await reinstalled.start();
      await waitUntil('the new certificate reported', () => /is not trusted by the gateway/.test(gw.endpoint().lastError ?? ''), 15_000);
      expect(gw.adapter.health().connected).toBe(false);
      expect(gw.logs.filter((l) => l.code === 'COSAFE_ERR_OPCUA_SECURITY' && (l.level as number) >= 50)).toHaveLength(1);
      const pki = join(gw.stateDir, 'opcua-pki');
      await waitUntil('the new certificate in rejected/', () => readdirSync(join(pki, 'rejected')).length > 0, 5000);
      for (const f of readdirSync(join(pki, 'rejected'))) renameSync(join(pki, 'rejected', f), join(pki, 'trusted', 'certs', f));
      const t0 = Date.now();
      await waitUntil('readings from the reinstalled server', () => gw.values('water_pressure', t0).length > 0 && gw.adapter.health().connected, 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${JSON.stringify(gw.endpoint())}\n${messages(gw).join('\n')}\n${readdirSync(join(gw.stateDir, 'opcua-pki', 'rejected'))}`);
      });
    } finally {
      await gw.stop();
      await reinstalled.dispose();
    }
  });
});

/** What an operator does once: put the server's certificate in the gateway's trusted folder. */
function trustServer(stateDir: string, server: OpcuaSprinklerServer): void {
  const trusted = join(stateDir, 'opcua-pki', 'trusted', 'certs');
  mkdirSync(trusted, { recursive: true });
  copyFileSync(server.certificateFile, join(trusted, 'bms-server.pem'));
}

/** A self-signed client certificate and its key, made by node-opcua's certificate manager. */
async function makeClientCertificate(applicationUri: string): Promise<{ certificateFile: string; privateKeyFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-opcua-client-cert-'));
  dirs.push(dir);
  const cm = new OPCUACertificateManager({ rootFolder: dir, disableFileWatchers: true });
  await cm.initialize();
  const certificateFile = join(dir, 'gateway-cert.pem');
  await cm.createSelfSignedCertificate({ applicationUri, subject: '/CN=cosafe test gateway/O=cosafe', dns: ['localhost'], startDate: new Date(), validity: 2, outputFile: certificateFile });
  await cm.dispose();
  return { certificateFile, privateKeyFile: join(dir, 'own', 'private', 'private_key.pem') };
}

describe('OPC-UA supervision while values hold still', () => {
  it('proves the link with the subscription keep-alive, so a quiet server is not taken for a lost one', async () => {
    const still = new OpcuaSprinklerServer({ simulateEveryMs: 0 });
    await still.start();
    try {
      const gw = await startAdapter([{ id: 'quiet-bms', profile: PROFILE, endpoint: still.endpointUrl }]);
      await waitUntil('the first readings', () => METRICS.every((m) => gw.values(m).length > 0), 10_000);
      const from = gw.received.length;
      // Nothing changes on this server, yet the gateway keeps hearing from the device: every keep-alive (1 s here).
      await waitUntil('three keep-alives', () => gw.received.length - from >= 3, 15_000);
      expect(gw.received.slice(from).flatMap((x) => x.outcome.values)).toEqual([]);
      await gw.stop();
    } finally {
      await still.dispose();
    }
  });
});
