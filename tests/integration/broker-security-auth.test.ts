import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/index.js';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { runCosafe } from '../helpers/cosafe-cli.js';
import { login, mosquittoPub, mosquittoSub } from '../helpers/mosquitto.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * Who may connect, publish and read on the TCP listener, tried with Debian's
 * mosquitto clients (an implementation nobody here wrote) and with mqtt.js.
 */
let t: TestBroker;
let port: string;
let gateway: { username: string; password: string };
let device: { username: string; password: string };
let admin: { username: string; password: string };
let watcher: MqttClient;
const seen: { topic: string; payload: string }[] = [];

beforeAll(async () => {
  t = await startTestBroker();
  port = String(t.broker.port);
  [gateway, device, admin] = await Promise.all([
    t.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1', district: 'north' }),
    t.credential({ role: 'device', id: 'bakery-12.smoke-1', site: 'bakery-12', device: 'smoke-1' }),
    t.credential({ role: 'admin', id: 'ops' }),
  ]);
  // An admin sees everything that gets through (but not $SYS, which '#' never matches).
  watcher = await t.connect({ clientId: 'watcher', ...admin });
  watcher.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  await watcher.subscribeAsync('#', { qos: 1 });
});

afterAll(async () => {
  await t?.close();
});

const delivered = (topic: string, payload: string) => seen.some((m) => m.topic === topic && m.payload === payload);

describe('credentials', () => {
  it('accepts the right credentials (mosquitto_pub and mosquitto_sub)', async () => {
    let exited = false;
    const sub = mosquittoSub(['-p', port, ...login(gateway), '-t', subscriptions.siteUplinks('bakery-12'), '-q', '1', '-C', '1', '-W', '8', '-v']).finally(() => (exited = true));
    // mosquitto_sub subscribes in its own time: publish until it has received one.
    const topic = topics.deviceUplink('bakery-12', 'smoke-1');
    for (let i = 0; i < 40 && !exited; i++) {
      const pub = await mosquittoPub(['-p', port, ...login(device), '-t', topic, '-q', '1', '-m', '{"smoke":false}']);
      expect(pub.code, pub.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 100));
    }
    const out = await sub;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`${topic} {"smoke":false}`);
  });

  it('refuses a wrong secret, an unknown user and anonymous clients, and says which', async () => {
    const wrong = await mosquittoPub(['-p', port, '-u', device.username, '-P', `${device.password}x`, '-t', 'x', '-m', 'x']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('bad user name or password');
    const unknown = await mosquittoPub(['-p', port, '-u', 'nobody', '-P', device.password, '-t', 'x', '-m', 'x']);
    expect(unknown.stderr).toContain('bad user name or password');
    const anonymous = await mosquittoPub(['-p', port, '-t', topics.deviceUplink('bakery-12', 'smoke-1'), '-m', 'x']);
    expect(anonymous.stderr).toContain('not authorised');
    const err = await connectError(t.broker.url, { username: device.username, password: 'guess' });
    expect(err.code).toBe(4);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'wrong-secret', listener: 'tcp' })).toBe(2);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'unknown-identity', listener: 'tcp' })).toBe(1);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'anonymous-not-admitted', listener: 'tcp' })).toBe(1);
    expect(t.logs().filter((l) => l.code === 'COSAFE_ERR_AUTH_REJECTED').map((l) => l.reason)).toEqual(
      expect.arrayContaining(['wrong-secret', 'unknown-identity', 'anonymous-not-admitted']),
    );
  });
});

describe('authorization', () => {
  it('drops and counts a gateway publishing into another site, and disconnects it', async () => {
    const foreign = topics.readings('other-site', 'gw-1');
    const r = await mosquittoPub(['-p', port, ...login(gateway), '-t', foreign, '-q', '1', '-m', 'forged']);
    // [MQTT-3.3.5-2]: no PUBACK, the connection is closed.
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/connection was lost/i);
    // Its own site's topic goes through, so the drop is not a broken broker.
    const own = await mosquittoPub(['-p', port, ...login(gateway), '-t', topics.events('bakery-12', 'gw-1'), '-q', '1', '-m', 'genuine']);
    expect(own.code, own.stderr).toBe(0);
    await waitUntil('the genuine event at the watcher', () => delivered(topics.events('bakery-12', 'gw-1'), 'genuine'));
    expect(delivered(foreign, 'forged')).toBe(false);
    expect(t.metrics.get('cosafe_broker_denied_total', { action: 'publish', role: 'gateway' })).toBe(1);
  });

  it('keeps a device to its own uplink topic', async () => {
    const other = await mosquittoPub(['-p', port, ...login(device), '-t', topics.deviceUplink('bakery-12', 'temp-1'), '-q', '1', '-m', 'posing']);
    expect(other.code).not.toBe(0);
    const gatewayTopic = await mosquittoPub(['-p', port, ...login(device), '-t', topics.readings('bakery-12', 'gw-1'), '-q', '1', '-m', 'posing']);
    expect(gatewayTopic.code).not.toBe(0);
    const sys = await mosquittoPub(['-p', port, ...login(admin), '-t', '$SYS/fake', '-q', '1', '-m', 'posing']);
    expect(sys.code).not.toBe(0);
    expect(seen.filter((m) => m.payload === 'posing')).toEqual([]);
  });

  it("lets a bridged device publish on its own topic, read by its own site's gateway only", async () => {
    const bridged = await t.credential({ role: 'device', id: 'bakery-12.store', site: 'bakery-12', device: 'store', topic: 'zigbee2mqtt/store-sensor' });
    const other = await t.credential({ role: 'gateway', id: 'other-site.gw-1', site: 'other-site', gateway: 'gw-1' });
    const gw = await t.connect({ ...gateway, clientId: 'gw-bridge-test' });
    const got = new Promise<string>((resolve) => gw.once('message', (_t, p) => resolve(p.toString())));
    await gw.subscribeAsync('zigbee2mqtt/store-sensor', { qos: 1 });
    const stranger = await t.connect({ ...other, clientId: 'other-gw' });
    const err = (await stranger.subscribeAsync('zigbee2mqtt/store-sensor').catch((e: unknown) => e)) as { packet?: { granted: number[] } };
    expect(err.packet?.granted).toEqual([128]);
    const r = await mosquittoPub(['-p', port, ...login(bridged), '-t', 'zigbee2mqtt/store-sensor', '-q', '1', '-m', '{"temperature":4.5}']);
    expect(r.code, r.stderr).toBe(0);
    expect(await got).toBe('{"temperature":4.5}');
  });

  it("lets a zigbee2mqtt-style bridge publish for all its devices under its prefix, read by its own site's gateway only", async () => {
    // zigbee2mqtt/store-sensor belongs to a device credential above: a bridge's prefix may not overlap it.
    const bridge = await t.credential({ role: 'bridge', id: 'bakery-12.z2m', site: 'bakery-12', prefix: 'z2m-bakery' });
    const other = await t.credential({ role: 'gateway', id: 'far-site.gw-1', site: 'far-site', gateway: 'gw-1' });
    const gw = await t.connect({ ...gateway, clientId: 'gw-z2m-test' });
    const got: string[] = [];
    gw.on('message', (topic, p) => got.push(`${topic} ${p.toString()}`));
    await gw.subscribeAsync('z2m-bakery/#', { qos: 1 });
    const stranger = await t.connect({ ...other, clientId: 'far-gw' });
    const err = (await stranger.subscribeAsync('z2m-bakery/#').catch((e: unknown) => e)) as { packet?: { granted: number[] } };
    expect(err.packet?.granted).toEqual([128]);
    // As zigbee2mqtt does: its last will and retained state on bridge/state, a device, its availability.
    const will = ['--will-topic', 'z2m-bakery/bridge/state', '--will-payload', '{"state":"offline"}', '--will-retain'];
    for (const [topic, payload] of [
      ['z2m-bakery/bridge/state', '{"state":"online"}'],
      ['z2m-bakery/store-sensor', '{"temperature":4.5,"linkquality":120}'],
      ['z2m-bakery/store-sensor/availability', '{"state":"online"}'],
    ]) {
      const r = await mosquittoPub(['-p', port, ...login(bridge), ...will, '-t', topic!, '-q', '1', '-m', payload!]);
      expect(r.code, r.stderr).toBe(0);
    }
    await waitUntil("the bridge's messages at its site's gateway", () => got.length === 3);
    expect(got).toEqual(['z2m-bakery/bridge/state {"state":"online"}', 'z2m-bakery/store-sensor {"temperature":4.5,"linkquality":120}', 'z2m-bakery/store-sensor/availability {"state":"online"}']);
    // Outside its prefix: denied, counted, and (MQTT 3.1.1 has no other answer) disconnected.
    const before = t.metrics.get('cosafe_broker_denied_total', { action: 'publish', role: 'bridge' });
    const posing = await mosquittoPub(['-p', port, ...login(bridge), '-t', topics.deviceUplink('bakery-12', 'smoke-1'), '-q', '1', '-m', 'posing']);
    expect(posing.code).not.toBe(0);
    expect(t.metrics.get('cosafe_broker_denied_total', { action: 'publish', role: 'bridge' })).toBe(before + 1);
    expect(seen.some((m) => m.payload === 'posing')).toBe(false);
  });

  it('answers a subscription beyond the role with the failure return code', async () => {
    const r = await mosquittoSub(['-p', port, ...login(gateway), '-t', subscriptions.allReadings, '-W', '3']);
    expect(r.stderr).toMatch(/denied/i);
    const c = await t.connect({ ...gateway, clientId: 'gw-sub-test' });
    const err = (await c.subscribeAsync(subscriptions.gatewayCommands('bakery-12', 'gw-2')).catch((e: unknown) => e)) as { packet?: { granted: number[] } };
    expect(err.packet?.granted).toEqual([128]);
    expect((await c.subscribeAsync(subscriptions.gatewayCommands('bakery-12', 'gw-1')))[0]?.qos).toBe(0);
    expect(c.connected).toBe(true); // a refused subscription does not cost the connection
  });
});

describe('rotation and revocation, from the command line while the broker runs', () => {
  it('ends the session of a rotated secret; the new secret works, the old does not', async () => {
    const cred = await t.credential({ role: 'device', id: 'bakery-12.temp-9', site: 'bakery-12', device: 'temp-9' });
    const c = await t.connect({ ...cred, clientId: 'temp-9' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const r = await runCosafe(['credentials', 'rotate', cred.username, '--data-dir', t.dataDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { secret } = JSON.parse(r.stdout) as { secret: string };
    await closed;
    expect((await connectError(t.broker.url, cred)).code).toBe(4);
    const fresh = await mosquittoPub(['-p', port, '-u', cred.username, '-P', secret, '-t', topics.deviceUplink('bakery-12', 'temp-9'), '-q', '1', '-m', 'after rotation']);
    expect(fresh.code, fresh.stderr).toBe(0);
  });

  it('disconnects a revoked identity at once and refuses it from then on', async () => {
    const cred = await t.credential({ role: 'device', id: 'bakery-12.temp-7', site: 'bakery-12', device: 'temp-7' });
    const c = await t.connect({ ...cred, clientId: 'temp-7' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const r = await runCosafe(['credentials', 'revoke', cred.username, '--data-dir', t.dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`revoked "${cred.username}"`);
    // The broker ends the session by itself (it checks the store every revocationCheckMs), the client does nothing.
    await closed;
    expect(t.metrics.get('cosafe_broker_sessions_ended_total', { reason: 'revoked' })).toBe(1);
    const again = await mosquittoPub(['-p', port, ...login(cred), '-t', topics.deviceUplink('bakery-12', 'temp-7'), '-m', 'x']);
    expect(again.stderr).toContain('bad user name or password');
    const list = await runCosafe(['credentials', 'list', '--all', '--data-dir', t.dataDir]);
    expect(list.stdout).toMatch(/bakery-12\.temp-7\s+device\s+site=bakery-12 device=temp-7\s+revoked/);
    // Never a secret or a hash.
    expect(list.stdout).not.toMatch(/cosafe_|scrypt|sha256/);
  });
});
