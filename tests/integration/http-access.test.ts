import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../broker/auth/identity.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { startFireHub, type FireHub } from '../helpers/fire-hub.js';
import { waitUntil } from '../helpers/processes.js';

/**
 * Every endpoint of the hub's HTTP API × every role → the status a caller
 * gets: 200 (or the endpoint's own answer, once access is granted), 401 (no
 * valid credential), 403 (a credential that may not). Against a real hub
 * (broker and cloud-sync) with real credentials; a route the hub registers
 * that this table does not name fails the test, so none is left open by
 * accident.
 */
type Login = { username: string; password: string };
type Who = 'anonymous' | 'resident' | 'wrong-secret' | 'revoked' | 'gateway' | 'device' | 'bridge' | 'service' | 'fd-north' | 'fd-south' | 'agency' | 'owner' | 'other-owner' | 'monitor' | 'admin';
const EVERYONE: Who[] = ['anonymous', 'resident', 'wrong-secret', 'revoked', 'gateway', 'device', 'bridge', 'service', 'fd-north', 'fd-south', 'agency', 'owner', 'other-owner', 'monitor', 'admin'];
const CREDENTIALS: Partial<Record<Who, Identity>> = {
  gateway: { role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' },
  device: { role: 'device', id: 'bakery-12.smoke-oven', site: 'bakery-12', device: 'smoke-oven' },
  bridge: { role: 'bridge', id: 'bakery-12.zigbee2mqtt', site: 'bakery-12', prefix: 'zigbee2mqtt' },
  service: { role: 'service', id: 'cloud-sync-2' },
  'fd-north': { role: 'fire-department', id: 'fd-north-3', district: 'north' },
  'fd-south': { role: 'fire-department', id: 'fd-south-1', district: 'south' },
  agency: { role: 'agency', id: 'statistics-office' },
  owner: { role: 'owner', id: 'anna', sites: ['bakery-12'] },
  'other-owner': { role: 'owner', id: 'depot-owner', sites: ['depot-3'] },
  monitor: { role: 'monitor', id: 'prometheus' },
  admin: { role: 'admin', id: 'ops' },
};

const north = { id: 'bakery-12', name: 'Bakery Müller', address: 'Hauptstr. 12, 10115 Berlin', location: { lat: 52.5301, lon: 13.3849 }, district: 'north' };
const south = { id: 'depot-3', name: 'Depot 3', address: 'Südring 3, 12345 Berlin', location: { lat: 52.41, lon: 13.4 }, district: 'south' };

let hub: FireHub;
const logins: Partial<Record<Who, Login>> = {};
let fireAlarm: string;
let troubleAlarm: string;

beforeAll(async () => {
  // The table sends the same wrong secrets many times from one address: the login limits (tested on their own) stay out of its way.
  hub = await startFireHub({ sites: [north, south], cloudSync: { alarms: { ackTimeoutSeconds: 600 }, public: { requestsPerMinute: 100_000, maxStreamsPerAddress: 1000 } }, http: { limits: { authFailuresPerMinute: 10_000 } } });
  for (const [who, identity] of Object.entries(CREDENTIALS)) logins[who as Who] = await hub.credential(identity);
  logins['wrong-secret'] = { username: 'anna', password: 'cosafe_not-the-secret' };
  const revoked = await hub.credential({ role: 'admin', id: 'former-admin' });
  hub.credentials.revoke('former-admin');
  logins.revoked = revoked;
  // A resident is anonymous (MQTT over WebSocket): a credential naming it is no credential.
  logins.resident = { username: 'anonymous', password: 'anything' };
  const fire = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', condition: 'smoke' });
  const trouble = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'panel', condition: 'zone-3-trouble', class: 'trouble', text: 'OPEN CIRCUIT' });
  await hub.publishEvent(logins.gateway!, fire);
  await hub.publishEvent(logins.gateway!, trouble);
  const alarms = async () => ((await (await hub.http('/api/v1/alarms', hub.admin)).json()) as { alarms: { id: string; class: string }[] }).alarms;
  await waitUntil('both alarms at the hub', async () => (await alarms()).length === 2, 10_000);
  fireAlarm = (await alarms()).find((a) => a.class === 'fire')!.id;
  troubleAlarm = (await alarms()).find((a) => a.class === 'trouble')!.id;
});

afterAll(async () => {
  await hub?.close();
});

/** The status a caller gets; `ok` stands for the status the endpoint answers once access is granted. */
type Row = { method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS'; path: () => string; route: string; ok?: number; body?: unknown; allowed: readonly Who[]; authenticatedOnly?: boolean };
const PUBLIC: Who[] = EVERYONE;
const CREDENTIALED: Who[] = EVERYONE.filter((w) => !['anonymous', 'resident', 'wrong-secret', 'revoked'].includes(w));

const table: Row[] = [
  { method: 'GET', route: '/health', path: () => '/health', allowed: PUBLIC },
  { method: 'GET', route: '/metrics', path: () => '/metrics', allowed: ['monitor', 'admin'] },
  { method: 'GET', route: '/api/v1/readings/latest', path: () => '/api/v1/readings/latest', allowed: ['owner', 'other-owner', 'admin'] },
  { method: 'GET', route: '/api/v1/readings/latest', path: () => '/api/v1/readings/latest?site=bakery-12', allowed: ['owner', 'admin'] },
  { method: 'GET', route: '/api/v1/readings/history', path: () => '/api/v1/readings/history?site=bakery-12&device=smoke-oven&metric=smoke', allowed: ['owner', 'admin'] },
  { method: 'GET', route: '/api/v1/gateways', path: () => '/api/v1/gateways', allowed: ['owner', 'other-owner', 'admin'] },
  { method: 'GET', route: '/api/v1/alarms', path: () => '/api/v1/alarms', allowed: ['fd-north', 'fd-south', 'owner', 'other-owner', 'admin'] },
  { method: 'GET', route: '/api/v1/alarms/stream', path: () => '/api/v1/alarms/stream', allowed: ['fd-north', 'fd-south', 'owner', 'other-owner', 'admin'] },
  { method: 'GET', route: '/api/v1/alarms/:id', path: () => `/api/v1/alarms/${fireAlarm}`, allowed: ['fd-north', 'owner', 'admin'] },
  { method: 'POST', route: '/api/v1/alarms/:id/ack', path: () => `/api/v1/alarms/${fireAlarm}/ack`, body: { operator: 'Weber' }, allowed: ['fd-north', 'admin'] },
  { method: 'POST', route: '/api/v1/alarms/:id/shelve', path: () => `/api/v1/alarms/${troubleAlarm}/shelve`, body: { minutes: 30, reason: 'panel service visit' }, allowed: ['admin'] },
  { method: 'POST', route: '/api/v1/alarms/:id/unshelve', path: () => `/api/v1/alarms/${troubleAlarm}/unshelve`, allowed: ['admin'] },
  { method: 'GET', route: '/api/v1/sites', path: () => '/api/v1/sites', allowed: ['fd-north', 'fd-south', 'owner', 'other-owner', 'admin'] },
  { method: 'GET', route: '/api/v1/sites/:id', path: () => '/api/v1/sites/bakery-12', allowed: ['fd-north', 'owner', 'admin'] },
  { method: 'GET', route: '/api/v1/sites/:id/devices', path: () => '/api/v1/sites/bakery-12/devices', allowed: ['owner', 'admin'] },
  { method: 'GET', route: '/api/v1/sites/:id/alarm-history', path: () => '/api/v1/sites/bakery-12/alarm-history', allowed: ['fd-north', 'owner', 'admin'] },
  // Who am I: any valid credential (a machine's learns it may do nothing here); signing out likewise.
  { method: 'GET', route: '/api/v1/session', path: () => '/api/v1/session', allowed: CREDENTIALED },
  { method: 'DELETE', route: '/api/v1/session', path: () => '/api/v1/session', ok: 204, allowed: CREDENTIALED },
  // Signing in is public: without a body it is a bad request for everyone, never a 401/403 of the door.
  { method: 'POST', route: '/api/v1/session', path: () => '/api/v1/session', ok: 400, body: {}, allowed: PUBLIC },
  // Agencies: their districts' summaries (no site in them).
  { method: 'GET', route: '/api/v1/agency/summary', path: () => '/api/v1/agency/summary', allowed: ['agency', 'admin'] },
  { method: 'GET', route: '/api/v1/agency/districts/:district/summary', path: () => '/api/v1/agency/districts/north/summary', allowed: ['agency', 'admin'] },
  // The residents' public endpoints: anyone (they hold nothing private).
  { method: 'GET', route: '/public/v1/config', path: () => '/public/v1/config', allowed: PUBLIC },
  { method: 'GET', route: '/public/v1/alerts', path: () => '/public/v1/alerts', allowed: PUBLIC },
  { method: 'GET', route: '/public/v1/alerts/stream', path: () => '/public/v1/alerts/stream', allowed: PUBLIC },
  { method: 'GET', route: '/public/v1/alerts/:file', path: () => '/public/v1/alerts/no-such-alert.json', ok: 404, allowed: PUBLIC },
  { method: 'GET', route: '/public/v1/feeds/cap.atom', path: () => '/public/v1/feeds/cap.atom', allowed: PUBLIC },
  { method: 'GET', route: '/public/v1/feeds/:district/cap.atom', path: () => '/public/v1/feeds/north/cap.atom', allowed: PUBLIC },
  { method: 'OPTIONS', route: '/public/v1/*', path: () => '/public/v1/alerts', ok: 204, allowed: PUBLIC },
  // The pages and their assets are public: the data they show is not.
  { method: 'GET', route: '/web/*', path: () => '/web/residents/', allowed: PUBLIC },
  { method: 'GET', route: '/web/*', path: () => '/web/owner/', allowed: PUBLIC },
  { method: 'GET', route: '/web/*', path: () => '/web/console/console.js', allowed: PUBLIC },
  { method: 'GET', route: '/vendor/*', path: () => '/vendor/uplot/uPlot.esm.js', allowed: PUBLIC },
  { method: 'GET', route: '/', path: () => '/', ok: 302, allowed: PUBLIC },
  { method: 'GET', route: '/residents', path: () => '/residents', ok: 302, allowed: PUBLIC },
  { method: 'GET', route: '/login', path: () => '/login', ok: 302, allowed: PUBLIC },
  { method: 'GET', route: '/owner', path: () => '/owner', ok: 302, allowed: PUBLIC },
  { method: 'GET', route: '/console', path: () => '/console', ok: 302, allowed: PUBLIC },
];

/** What `who` gets where `allowed` may: a wrong, revoked or anonymous-named secret is 401 everywhere, even on public routes (a program learns its credential is wrong). */
function expected(row: Row, who: Who): number {
  const presentsBadSecret = who === 'wrong-secret' || who === 'revoked' || who === 'resident';
  if (presentsBadSecret) return 401;
  if (row.allowed.includes(who)) return row.ok ?? 200;
  return who === 'anonymous' ? 401 : 403;
}

async function call(row: Row, who: Who): Promise<number> {
  const res = await hub.http(row.path(), logins[who], { method: row.method, redirect: 'manual', ...(row.body !== undefined ? { body: JSON.stringify(row.body) } : {}) });
  // A live stream is left at its first bytes.
  await res.body?.cancel();
  return res.status;
}

describe('who may call what over HTTP (real hub, every role)', () => {
  it('names every route the hub serves, each with an access rule or under a public prefix', () => {
    const served = hub.stack.cloudSync!.httpRoutes.map((r) => `${r.method} ${r.url}`);
    const named = new Set(table.map((r) => `${r.method} ${r.route}`));
    expect(served.filter((r) => !named.has(r))).toEqual([]);
    for (const r of hub.stack.cloudSync!.httpRoutes) expect(r.access ?? (['/web/', '/public/v1/'].some((p) => r.url.startsWith(p)) ? 'public' : null), `${r.method} ${r.url}`).not.toBeNull();
  });

  // Order matters only for the changes (ack, shelve): the first allowed caller changes the alarm, the others find it changed.
  it.each(table.flatMap((row, i) => EVERYONE.map((who) => [`${i}: ${row.method} ${row.route}`, who, row] as const)))('%s as %s', async (_name, who, row) => {
    expect(await call(row, who)).toBe(expected(row, who));
  });

  it('confines an owner to their own sites in what an allowed list returns', async () => {
    const gateways = (await (await hub.http('/api/v1/gateways', logins.owner)).json()) as { gateways: { site: string }[] };
    expect(gateways.gateways.every((g) => g.site === 'bakery-12')).toBe(true);
    const other = (await (await hub.http('/api/v1/alarms', logins['other-owner'])).json()) as { alarms: unknown[] };
    expect(other.alarms).toEqual([]);
    const mine = (await (await hub.http('/api/v1/alarms', logins.owner)).json()) as { alarms: { site: string; ack: { by: string } | null }[] };
    expect(mine.alarms.map((a) => a.site)).toEqual(['bakery-12', 'bakery-12']);
    // The owner sees who acknowledged their alarm (the fire department, in the table above).
    expect(mine.alarms.some((a) => a.ack?.by === 'fd-north-3')).toBe(true);
    const sites = (await (await hub.http('/api/v1/sites', logins.owner)).json()) as { sites: { id: string }[] };
    expect(sites.sites.map((s) => s.id)).toEqual(['bakery-12']);
  });

  it("tells the anonymous only whether the hub is up; a monitor gets /health's details", async () => {
    expect(Object.keys((await (await hub.http('/health')).json()) as object)).toEqual(['status']);
    expect(Object.keys((await (await hub.http('/health', logins.monitor)).json()) as object)).toEqual(expect.arrayContaining(['status', 'gateways', 'store']));
  });

  it('counts every refusal', () => {
    expect(hub.stack.metrics.get('cosafe_http_denied_total', { permission: 'metrics.read', role: 'owner' })).toBeGreaterThanOrEqual(1);
    expect(hub.stack.metrics.get('cosafe_http_denied_total', { permission: 'readings.read', role: 'fire-department' })).toBeGreaterThanOrEqual(1);
    expect(hub.stack.metrics.get('cosafe_http_auth_failures_total', { reason: 'missing' })).toBeGreaterThanOrEqual(1);
    expect(hub.stack.metrics.get('cosafe_http_auth_failures_total', { reason: 'unknown-or-wrong' })).toBeGreaterThanOrEqual(1);
  });
});
