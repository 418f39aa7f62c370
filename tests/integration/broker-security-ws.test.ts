import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics } from '../../broker/contract/index.js';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * Residents: anonymous, over WebSocket (as a browser page would connect), and
 * allowed to read `public/` topics only.
 */
const CELL = '871fb4662ffffff';
let t: TestBroker;
let ws: string;
let service: { username: string; password: string };
let gateway: { username: string; password: string };

beforeAll(async () => {
  t = await startTestBroker({ listeners: { ws: { enabled: true, port: 0 } } });
  ws = t.broker.listeners.ws!.url;
  [service, gateway] = await Promise.all([
    t.credential({ role: 'service', id: 'cloud-sync' }),
    t.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' }),
  ]);
});

afterAll(async () => {
  await t?.close();
});

/** What cloud-sync (a service) does: publish an alert for residents, here with mosquitto_pub over TCP. */
async function publishAlert(message: string): Promise<void> {
  const r = await mosquittoPub(['-p', String(t.broker.port), ...login(service), '-t', topics.publicAlerts(CELL), '-q', '1', '-m', message]);
  expect(r.code, r.stderr).toBe(0);
}

describe('a resident over WebSocket', () => {
  it('reads a public alert', async () => {
    expect(ws).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const resident = await t.connect({ clientId: 'resident-page-1' }, ws);
    const alerts: string[] = [];
    resident.on('message', (_topic, payload) => alerts.push(payload.toString()));
    await resident.subscribeAsync(topics.publicAlerts(CELL), { qos: 1 });
    // cloud-sync (a service) publishes the minimized alert; here with mosquitto_pub over TCP.
    const alert = JSON.stringify({ hazard: 'fire', area: CELL, instructions: 'Keep windows closed', time: Date.now() });
    const r = await mosquittoPub(['-p', String(t.broker.port), ...login(service), '-t', topics.publicAlerts(CELL), '-q', '1', '-m', alert]);
    expect(r.code, r.stderr).toBe(0);
    await waitUntil('the alert at the resident', () => alerts.length === 1);
    expect(JSON.parse(alerts[0]!)).toMatchObject({ hazard: 'fire', area: CELL });
  });

  it('may not subscribe to #, to a site, or to $SYS', async () => {
    const resident = await t.connect({ clientId: 'resident-page-2' }, ws);
    for (const filter of ['#', subscriptions.allReadings, topics.readings('bakery-12', 'gw-1'), subscriptions.sys, '$SYS/+/heartbeat']) {
      const err = (await resident.subscribeAsync(filter).catch((e: unknown) => e)) as { packet?: { granted: number[] } };
      expect(err.packet?.granted, filter).toEqual([128]);
    }
    // Nothing of a site reaches it, even by accident: the gateway publishes, then
    // a public alert follows; the broker delivers in order, so once the alert is
    // there, anything of the site would have been there before it.
    await resident.subscribeAsync(topics.publicAlerts(CELL), { qos: 1 });
    const got: string[] = [];
    resident.on('message', (topic) => got.push(topic));
    const r = await mosquittoPub(['-p', String(t.broker.port), ...login(gateway), '-t', topics.readings('bakery-12', 'gw-1'), '-q', '1', '-m', '{"business":"Bakery 12"}']);
    expect(r.code, r.stderr).toBe(0);
    await publishAlert('after the reading');
    await waitUntil('the public alert after it', () => got.length > 0);
    expect(got).toEqual([topics.publicAlerts(CELL)]);
    expect(resident.connected).toBe(true);
    expect(t.metrics.get('cosafe_broker_denied_total', { action: 'subscribe', role: 'resident' })).toBe(5);
  });

  it('never publishes: a try is dropped and the connection closed', async () => {
    const watcher = await t.connect({ clientId: 'resident-page-3' }, ws);
    const got: string[] = [];
    watcher.on('message', (_t, p) => got.push(p.toString()));
    await watcher.subscribeAsync(subscriptions.allPublic, { qos: 1 });
    const resident = await t.connect({ clientId: 'resident-page-4' }, ws);
    const closed = new Promise<void>((resolve) => resident.once('close', () => resolve()));
    resident.publish(topics.publicAlerts(CELL), 'fake alert', { qos: 1 });
    await closed;
    // A real alert after it: once the watcher has it, the fake one would have come first.
    await publishAlert('real alert');
    await waitUntil('the real alert', () => got.length > 0);
    expect(got).toEqual(['real alert']);
    expect(t.metrics.get('cosafe_broker_denied_total', { action: 'publish', role: 'resident' })).toBe(1);
  });

  it('is the only anonymous client: roles the WebSocket listener does not admit are refused there', async () => {
    expect((await connectError(ws, { ...gateway })).code).toBe(5);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'role-not-admitted', listener: 'ws' })).toBe(1);
  });
});
