import { cellToParent, latLngToCell } from 'h3-js';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics, type AgencySummary, type PublicAlert, type PublicCellAlerts } from '../../broker/contract/index.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { startFireHub, type FireHub } from '../helpers/fire-hub.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { leaks, nearPositions, privateStrings } from '../helpers/privacy-scan.js';
import { waitUntil } from '../helpers/processes.js';
import { openSse, type SseClient } from '../helpers/sse.js';
import { assertValidCap } from '../helpers/xmllint.js';

type Login = { username: string; password: string };

/** Three sites share one resolution-8 cell in district north; a lone depot in south shares its cell with nobody. */
const north = [
  { id: 'bakery-12', name: 'Bakery Müller', address: 'Hauptstr. 12, 10115 Berlin', location: { lat: 52.5301, lon: 13.3849 }, district: 'north', occupancy: 'bakery, flats above', hazards: ['LPG tank in the yard'], contacts: [{ name: 'Anna Müller', phone: '+49 30 1234567', email: 'anna@bakery.example' }], notes: 'key safe at the back door' },
  { id: 'cafe-14', name: 'Café Sonne', address: 'Hauptstr. 14, 10115 Berlin', location: { lat: 52.5305, lon: 13.3858 }, district: 'north' },
  { id: 'print-9', name: 'Druckerei Weiss', address: 'Hauptstr. 9, 10115 Berlin', location: { lat: 52.5296, lon: 13.3841 }, district: 'north', hazards: ['solvent store'] },
];
const depot = { id: 'depot-3', name: 'Depot Süd', address: 'Südring 3, 12345 Berlin', location: { lat: 52.41, lon: 13.4 }, district: 'south', contacts: [{ name: 'Night Guard Ltd', phone: '+49 30 999888' }] };
const sites = [...north, depot];

const bakeryCell = latLngToCell(52.5301, 13.3849, 8);
const bakeryCoarse = cellToParent(bakeryCell, 5);

let hub: FireHub;
const logins: Record<string, Login> = {};
/** Everything a resident or an aggregator could read, for the privacy scan at the end. */
const publicOutputs: { where: string; text: string }[] = [];
const capSeen: string[] = [];
let resident: MqttClient;
const residentMessages: { topic: string; payload: string; retain: boolean }[] = [];
let everything: SseClient;
let neighbourhood: SseClient;

const events = {
  fire: alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', location: 'ground floor, oven room', value: 17.25, metric: 'smoke_obscuration', unit: '%/m' }),
  secondDetector: alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'heat-store', condition: 'heat', location: 'flour store' }),
};

async function get(path: string, init?: RequestInit): Promise<Response> {
  const r = await hub.http(path, undefined, init);
  return r;
}
async function publicText(path: string, init?: RequestInit): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await get(path, init);
  const text = await r.text();
  publicOutputs.push({ where: path, text });
  return { status: r.status, text, headers: r.headers };
}
const alertsOf = async (query = '') => (JSON.parse((await publicText(`/public/v1/alerts${query}`)).text) as { alerts: PublicAlert[] }).alerts;
const dataOf = (e: { data: string }) => JSON.parse(e.data) as PublicAlert;

beforeAll(async () => {
  hub = await startFireHub({
    sites,
    broker: { listeners: { ws: { enabled: true, port: 0 } } },
    cloudSync: {
      fireDepartments: [{ id: 'fd-north', district: 'north', channels: [{ type: 'mqtt' }] }, { id: 'fd-south', district: 'south', channels: [{ type: 'mqtt' }] }],
      alarms: { ackTimeoutSeconds: 600 },
      public: { policy: { districts: { south: { classes: { fire: 'auto' } } } }, endedVisibleMinutes: 60 },
      agency: { intervalSeconds: 3600 },
    },
  });
  logins.gwNorth = await hub.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' });
  logins.gwSouth = await hub.credential({ role: 'gateway', id: 'depot-3.gw-1', site: 'depot-3', gateway: 'gw-1' });
  logins.fdNorth = await hub.credential({ role: 'fire-department', id: 'fd-north-3', district: 'north' });
  logins.agencyNorth = await hub.credential({ role: 'agency', id: 'agency-north', district: 'north' });
  logins.agencyCity = await hub.credential({ role: 'agency', id: 'agency-city' });
  logins.admin = await hub.credential({ role: 'admin', id: 'ops' });
  // A resident's page over MQTT over WebSocket, anonymous, reading every public topic (retained and live).
  resident = await mqtt.connectAsync(hub.stack.broker!.listeners.ws!.url, { reconnectPeriod: 0 });
  resident.on('message', (topic, payload, packet) => residentMessages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await resident.subscribeAsync(subscriptions.allPublic, { qos: 1 });
  everything = await openSse(`${hub.api}/public/v1/alerts/stream`);
  neighbourhood = await openSse(`${hub.api}/public/v1/alerts/stream?cells=${bakeryCoarse}`);
  await everything.next((e) => e.event === 'snapshot');
});

afterAll(async () => {
  everything?.close();
  neighbourhood?.close();
  await resident?.endAsync(true);
  await hub?.close();
});

describe('public alerts (real broker, MQTT over WebSocket, mosquitto clients, SSE, xmllint)', () => {
  let alert: PublicAlert;

  it('keeps an alarm private until the district\'s fire department says to warn the public', async () => {
    const dispatch = await hub.subscribe(logins.fdNorth!, subscriptions.district('north'));
    await hub.publishEvent(logins.gwNorth!, events.fire);
    await waitUntil('the department to get the alarm', () => dispatch.messages().length > 0);
    // The lifecycle has journaled it (it dispatched): district north's policy is on-confirmation, so nothing is public.
    expect(await alertsOf()).toEqual([]);
    expect(hub.stack.metrics.get('cosafe_public_withheld_total', { reason: 'awaiting-confirmation' })).toBe(1);
  });

  it('publishes a minimized alert on every channel when the department acknowledges with warnPublic', async () => {
    const alarmId = ((await (await hub.http('/api/v1/alarms', logins.fdNorth)).json()) as { alarms: { id: string }[] }).alarms[0]!.id;
    const ack = await hub.http(`/api/v1/alarms/${alarmId}/ack`, logins.fdNorth, { method: 'POST', body: JSON.stringify({ operator: 'Weber', warnPublic: true }) });
    expect(ack.status).toBe(200);
    const journal = ((await (await hub.http(`/api/v1/alarms/${alarmId}`, logins.fdNorth)).json()) as { journal: { kind: string; actor: string; detail: { warn?: boolean } }[] }).journal;
    expect(journal.find((j) => j.kind === 'public-warning')).toMatchObject({ actor: 'fd-north-3', detail: { warn: true } });

    alert = dataOf(await neighbourhood.next((e) => e.event === 'alert'));
    expect(alert).toMatchObject({ state: 'active', hazard: 'fire', confirmed: true, district: 'north', status: 'Actual', area: { resolution: 8 } });
    expect(alert.id).toMatch(/^pa_[0-9a-f]{32}$/);
    expect(alert.area.cells).toContain(bakeryCell);
    expect(alert.area.cells).toHaveLength(7);
    expect(alert.texts[0]!.instruction).toMatch(/windows/);
    // The JSON list, by the resident's fine cell and by the coarse one; not for a cell elsewhere.
    expect((await alertsOf(`?cells=${bakeryCell}`)).map((a) => a.id)).toEqual([alert.id]);
    expect((await alertsOf(`?cells=${bakeryCoarse}`)).map((a) => a.id)).toEqual([alert.id]);
    expect(await alertsOf(`?cells=${latLngToCell(52.41, 13.4, 8)}`)).toEqual([]);
    // The retained message of the cell and of its coarse parent, to a resident over WebSocket.
    await waitUntil('the retained cell message', () => residentMessages.some((m) => m.topic === topics.publicAlerts(bakeryCoarse) && m.payload.includes(alert.id)));
    // mosquitto_sub, nobody's client, reads the retained message of the resident's cell afresh.
    const sub = await hub.subscribe(logins.admin!, topics.publicAlerts(bakeryCell));
    await waitUntil('mosquitto_sub to get the retained cell', () => sub.messages().length > 0);
    const cell = JSON.parse(sub.messages()[0]!) as PublicCellAlerts;
    expect(cell.alerts.map((a) => a.id)).toEqual([alert.id]);
    publicOutputs.push({ where: 'mosquitto_sub public cell', text: sub.output() });
  });

  it('a second detector of the same site is the same public alert, not a second one', async () => {
    await hub.publishEvent(logins.gwNorth!, events.secondDetector);
    await waitUntil('the second alarm', async () => ((await (await hub.http('/api/v1/alarms', logins.fdNorth)).json()) as { alarms: unknown[] }).alarms.length === 2);
    const [only] = await alertsOf();
    expect(await alertsOf()).toHaveLength(1);
    expect(only).toMatchObject({ id: alert.id, state: 'active', confirmed: true, updated: alert.updated });
  });

  it('serves the alert as CAP 1.2 (scope Public, valid against the OASIS schema) in Atom feeds, cacheable and open to other sites', async () => {
    const cap = await publicText(`/public/v1/alerts/${alert.id}.cap.xml`);
    expect(cap.status).toBe(200);
    expect(cap.headers.get('content-type')).toMatch(/application\/cap\+xml/);
    capSeen.push(cap.text);
    await assertValidCap(cap.text);
    expect(cap.text).toContain('<scope>Public</scope>');
    expect(cap.text).toContain('<msgType>Alert</msgType>');
    expect(cap.text).toContain('<certainty>Observed</certainty>');
    expect(cap.text).toMatch(/<polygon>[\d., ]+<\/polygon>/);
    expect(cap.text).toContain(`<value>${bakeryCell}</value>`);

    const feed = await publicText('/public/v1/feeds/cap.atom');
    expect(feed.headers.get('content-type')).toMatch(/application\/atom\+xml/);
    expect(feed.text).toContain(`/public/v1/alerts/${alert.id}.cap.xml`);
    expect(feed.text).toContain('type="application/cap+xml"');
    expect((await publicText('/public/v1/feeds/north/cap.atom')).text).toContain(alert.id);
    expect((await publicText('/public/v1/feeds/south/cap.atom')).text).not.toContain(alert.id);
    expect((await publicText('/public/v1/feeds/nowhere/cap.atom')).status).toBe(404);

    // ETag and Cache-Control: a poller that has it gets 304 and no body.
    const etag = feed.headers.get('etag')!;
    expect(feed.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const again = await get('/public/v1/feeds/cap.atom', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(feed.headers.get('access-control-allow-origin')).toBe('*');
    const preflight = await get('/public/v1/alerts', { method: 'OPTIONS', headers: { origin: 'https://news.example', 'access-control-request-method': 'GET' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');
    expect((await publicText('/public/v1/alerts?cells=not-a-cell')).status).toBe(400);
  });

  it('ends the public alert when the department says so over MQTT: CAP Cancel on every channel, the retained message replaced', async () => {
    const r = await mosquittoPub(['-p', new URL(hub.brokerUrl).port, ...login(logins.fdNorth!), '-q', '1', '-t', topics.dispatchAck('north', events.fire.eventId), '-m', '{"v":1,"operator":"Weber","warnPublic":false}']);
    expect(r.code, r.stderr).toBe(0);
    const ended = dataOf(await neighbourhood.next((e) => e.event === 'alert' && dataOf(e).state === 'ended'));
    expect(ended.id).toBe(alert.id);
    expect(ended.ended).toBeGreaterThanOrEqual(alert.sent);
    expect(ended.texts[0]!.headline).toMatch(/^Over: /);
    await waitUntil('the retained cell message to say it ended', () => {
      const last = residentMessages.filter((m) => m.topic === topics.publicAlerts(bakeryCell)).at(-1);
      return last !== undefined && (JSON.parse(last.payload) as PublicCellAlerts).alerts[0]?.state === 'ended';
    });
    const cap = await publicText(`/public/v1/alerts/${alert.id}.cap.xml`);
    capSeen.push(cap.text);
    expect(cap.text).toContain('<msgType>Cancel</msgType>');
    expect(cap.text).toContain(`<references>cosafe-hub,${alert.id},`);
    expect(cap.text).toContain('<responseType>AllClear</responseType>');
    expect(hub.stack.metrics.get('cosafe_public_messages_total', { hazard: 'fire', msg_type: 'Cancel' })).toBe(1);
  });

  it('under an auto policy: public at once, widened to the coarsest cell for a lone site, never for trouble or test events, ended when the alarm clears', async () => {
    await hub.publishEvent(logins.gwSouth!, alarmEvent({ site: 'depot-3', device: 'panel', condition: 'ground-fault', class: 'trouble' }));
    await hub.publishEvent(logins.gwSouth!, alarmEvent({ site: 'depot-3', device: 'smoke-1', condition: 'walk-test', test: true }));
    const fire = alarmEvent({ site: 'depot-3', device: 'smoke-2', location: 'rack 4' });
    await hub.publishEvent(logins.gwSouth!, fire);
    const south = dataOf(await everything.next((e) => e.event === 'alert' && dataOf(e).district === 'south'));
    expect(south).toMatchObject({ state: 'active', confirmed: false, area: { resolution: 5 } });
    expect(hub.stack.metrics.get('cosafe_public_area_below_k_total')).toBe(1);
    // The trouble and the test event came first, from the same gateway: they were applied, and are not public.
    expect((await alertsOf()).filter((a) => a.district === 'south').map((a) => a.id)).toEqual([south.id]);
    expect(hub.stack.metrics.get('cosafe_public_withheld_total', { reason: 'test-event' })).toBe(1);
    // Widened to resolution 5 with its ring, it reaches the bakery's coarse cell (13 km away), not Hamburg.
    expect((await alertsOf(`?cells=${bakeryCoarse}`)).map((a) => a.id)).toContain(south.id);
    expect(await alertsOf(`?cells=${latLngToCell(53.55, 9.99, 8)}`)).toEqual([]);
    await hub.publishEvent(logins.gwSouth!, alarmEvent({ ...fire, eventId: alarmEvent().eventId, state: 'cleared', time: Date.now() }));
    const cleared = dataOf(await everything.next((e) => e.event === 'alert' && dataOf(e).id === south.id && dataOf(e).state === 'ended'));
    expect(cleared.ended).toBeDefined();
    const cap = await publicText(`/public/v1/alerts/${south.id}.cap.xml`);
    capSeen.push(cap.text);
    expect(cap.text).toContain('<msgType>Cancel</msgType>');
  });

  it('resumes a stream from Last-Event-ID, and starts afresh from a snapshot when the id is unknown', async () => {
    const first = everything.events.find((e) => e.event === 'alert')!;
    const resumed = await openSse(`${hub.api}/public/v1/alerts/stream`, { 'last-event-id': first.id! });
    const later = everything.events.filter((e) => e.event === 'alert' && Number(e.id) > Number(first.id));
    await resumed.next((e) => e.id === later.at(-1)!.id);
    expect(resumed.events.filter((e) => e.event === 'alert').map((e) => e.id)).toEqual(later.map((e) => e.id));
    resumed.close();
    publicOutputs.push({ where: 'SSE resumed', text: resumed.raw() });
    const afresh = await openSse(`${hub.api}/public/v1/alerts/stream`, { 'last-event-id': '999999' });
    const snapshot = await afresh.next((e) => e.event === 'snapshot');
    expect((JSON.parse(snapshot.data) as { alerts: PublicAlert[] }).alerts.map((a) => a.state)).toEqual(['ended', 'ended']);
    afresh.close();
  });

  it('gives agencies counts per district over MQTT and HTTP, confined to their district', async () => {
    const sub = await hub.subscribe(logins.agencyNorth!, `cosafe/v1/agency/north/summary`);
    let summary: AgencySummary | undefined;
    await waitUntil('a north summary with both alarms', () => {
      const last = sub.messages().at(-1);
      summary = last ? (JSON.parse(last) as AgencySummary) : undefined;
      return (summary?.alarms.perDay.at(-1)?.classes.fire ?? 0) === 2;
    });
    expect(summary).toMatchObject({ district: 'north', sites: { registered: 3 }, alarms: { open: { acknowledged: 1, unacknowledged: 1 } }, timeToAcknowledge: { count: 1 } });
    expect(summary!.timeToAcknowledge.medianSeconds).toBeGreaterThanOrEqual(0);
    const mine = (await (await hub.http('/api/v1/agency/summary', logins.agencyNorth)).json()) as { districts: AgencySummary[] };
    expect(mine.districts.map((s) => s.district)).toEqual(['north']);
    expect((await hub.http('/api/v1/agency/districts/south/summary', logins.agencyNorth)).status).toBe(403);
    const city = (await (await hub.http('/api/v1/agency/summary', logins.agencyCity)).json()) as { districts: AgencySummary[] };
    expect(city.districts.map((s) => s.district)).toEqual(['north', 'south']);
    expect(city.districts[1]!.alarms.perDay.at(-1)!.classes).toMatchObject({ fire: 1, trouble: 1 });
    expect((await hub.http('/api/v1/agency/summary', logins.fdNorth)).status).toBe(403);
    expect((await hub.http('/api/v1/agency/summary')).status).toBe(401);
    publicOutputs.push({ where: 'agency MQTT', text: sub.output() }, { where: 'agency HTTP', text: JSON.stringify(city) });
  });

  it('nothing any public output carries is private: not a name, address, contact, hazard, id or position of the registry', async () => {
    // The residents' page and everything it loads.
    for (const path of ['/web/residents/', '/web/residents/residents.js', '/web/residents/residents.css', '/web/shared/dom.js', '/web/shared/connection.js', '/web/shared/h3.js', '/web/shared/base.css', '/public/v1/config']) {
      const r = await publicText(path);
      expect(r.status, path).toBe(200);
    }
    publicOutputs.push({ where: 'MQTT over WebSocket (resident)', text: residentMessages.map((m) => `${m.topic} ${m.payload}`).join('\n') });
    publicOutputs.push({ where: 'SSE (all)', text: everything.raw() }, { where: 'SSE (neighbourhood)', text: neighbourhood.raw() });
    const secret = privateStrings(sites, [
      ...Object.values(events).flatMap((e) => [e.device, e.eventId, e.gateway === 'gw-1' ? 'bakery-12.gw-1' : e.gateway, e.location ?? '']),
      'depot-3.gw-1',
      'smoke-2',
      'rack 4',
      'oven',
      '17.25',
    ]);
    expect(secret.length).toBeGreaterThan(25);
    const found = publicOutputs.flatMap((o) => [...leaks(o.text, secret, 8), ...nearPositions(o.text, sites)].map((l) => `${o.where}: ${l}`));
    expect(found).toEqual([]);
    expect(publicOutputs.length).toBeGreaterThan(20);
    for (const xml of capSeen) await assertValidCap(xml);
  });
});

describe('public endpoints under load', () => {
  let small: FireHub;
  beforeAll(async () => {
    small = await startFireHub({ sites: [], cloudSync: { public: { requestsPerMinute: 5 } } });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('limits requests per client address with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await small.http('/public/v1/alerts')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await small.http('/public/v1/alerts');
    expect(limited.headers.get('retry-after')).toBeTruthy();
    expect(((await limited.json()) as { code: string }).code).toBe('COSAFE_ERR_PUBLIC_RATE_LIMITED');
    expect(small.stack.metrics.get('cosafe_public_requests_limited_total', { limit: 'rate' })).toBeGreaterThanOrEqual(2);
    // The private API is not the public one: its requests are not counted against the public limit
    // (asked until both of cloud-sync's lanes are connected: the telemetry lane connects from its worker thread).
    await waitUntil('/health to answer 200, never 429', async () => {
      const status = (await small.http('/health')).status;
      expect(status).not.toBe(429);
      return status === 200;
    }, 30_000, 100);
  });
});
