import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptions, topics, type DispatchMessage } from '../../broker/contract/index.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { SiteStore, siteStorePath } from '../../cloud-sync/registry/site-store.js';
import { startFireHub, type FireHub } from '../helpers/fire-hub.js';
import { mosquittoPub } from '../helpers/mosquitto.js';
import { waitUntil } from '../helpers/processes.js';
import { assertValidCap } from '../helpers/xmllint.js';
import { FireDepartmentReceiver, type ReceivedAlarm } from '../simulators/fire-department.js';

const secret = () => `whsec_${randomBytes(24).toString('base64')}`;
type Login = { username: string; password: string };

const north = { id: 'bakery-12', name: 'Bakery Müller', address: 'Hauptstr. 12, 10115 Berlin', location: { lat: 52.5301, lon: 13.3849 }, district: 'north', hazards: ['LPG tank in the yard'], contacts: [{ name: 'Anna Müller', phone: '+49 30 1234567' }] };
const south = { id: 'depot-3', name: 'Depot 3', address: 'Südring 3, 12345 Berlin', location: { lat: 52.41, lon: 13.4 }, district: 'south' };

let hub: FireHub;
let fdNorth: FireDepartmentReceiver;
let fdSouth: FireDepartmentReceiver;
let dutyOfficer: FireDepartmentReceiver;
const logins: Record<string, Login> = {};
/** Every CAP message these tests see goes through xmllint. */
const capSeen: string[] = [];

const data = (a: ReceivedAlarm) => a.body.data as unknown as DispatchMessage;
const received = (fd: FireDepartmentReceiver, f: (m: DispatchMessage) => boolean) =>
  fd.waitFor((a) => f(data(a)), 20_000).then((a) => {
    capSeen.push(data(a).cap);
    return data(a);
  });

beforeAll(async () => {
  const secrets = { north: secret(), south: secret(), duty: secret() };
  fdNorth = await new FireDepartmentReceiver({ secret: secrets.north }).start();
  fdSouth = await new FireDepartmentReceiver({ secret: secrets.south }).start();
  dutyOfficer = await new FireDepartmentReceiver({ secret: secrets.duty }).start();
  hub = await startFireHub({
    sites: [north, south],
    cloudSync: {
      fireDepartments: [
        { id: 'fd-north', district: 'north', url: fdNorth.url, secret: secrets.north, channels: [{ type: 'mqtt' }] },
        { id: 'fd-south', district: 'south', url: fdSouth.url, secret: secrets.south },
        { id: 'duty-officer', primary: false, url: dutyOfficer.url, secret: secrets.duty },
      ],
      alarms: {
        ackTimeoutSeconds: 600,
        // South is unattended in these tests: it escalates to the duty officer after 1 s.
        districts: { south: { ackTimeoutSeconds: 1, escalation: [{ notify: ['duty-officer'] }] } },
      },
    },
  });
  logins.gwNorth = await hub.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1', district: 'north' });
  logins.gwSouth = await hub.credential({ role: 'gateway', id: 'depot-3.gw-1', site: 'depot-3', gateway: 'gw-1' });
  logins.gwStray = await hub.credential({ role: 'gateway', id: 'stray.gw-1', site: 'stray', gateway: 'gw-1' });
  logins.fdNorth = await hub.credential({ role: 'fire-department', id: 'fd-north-3', district: 'north' });
  logins.fdSouth = await hub.credential({ role: 'fire-department', id: 'fd-south-1', district: 'south' });
  logins.admin = await hub.credential({ role: 'admin', id: 'ops' });
});

afterAll(async () => {
  for (const xml of capSeen) await assertValidCap(xml);
  await hub?.close();
  await Promise.all([fdNorth, fdSouth, dutyOfficer].map((r) => r?.stop()));
});

describe('fire departments (real broker, webhooks, mosquitto clients, xmllint)', () => {
  const first = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', location: 'ground floor, oven room' });
  let alarmId: string;

  it('dispatches an alarm to its district on the webhook and on MQTT, with a valid CAP 1.2 alert', async () => {
    const sub = await hub.subscribe(logins.fdNorth!, subscriptions.district('north'));
    await hub.publishEvent(logins.gwNorth!, first);
    const m = await received(fdNorth, (x) => x.eventId === first.eventId);
    alarmId = m.alarmId;
    expect(m).toMatchObject({ msgType: 'Alert', district: 'north', alarmState: 'active-unacknowledged', escalation: 0, device: 'smoke-oven' });
    await assertValidCap(m.cap);
    expect(m.cap).toContain('<scope>Restricted</scope>');
    expect(m.cap).toContain('<circle>52.5301,13.3849 0.05</circle>');
    expect(m.cap).toContain('Hauptstr. 12, 10115 Berlin');
    expect(m.cap).toContain('ground floor, oven room');
    expect(m.cap).toMatch(/<sent>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d<\/sent>/);
    // The fire department's own MQTT client reads the same dispatch on its district's topic.
    await waitUntil('mosquitto_sub to get the dispatch', () => sub.messages().length > 0);
    const viaMqtt = JSON.parse(sub.messages()[0]!) as DispatchMessage;
    expect(viaMqtt.messageId).toBe(m.messageId);
    capSeen.push(viaMqtt.cap);
    // Nobody else: the south department got nothing of it.
    expect(fdSouth.alarms.some((a) => data(a).alarmId === alarmId)).toBe(false);
  });

  it('refuses an acknowledgement from another district, over MQTT and over HTTP, and counts it', async () => {
    const metrics = hub.stack.metrics;
    // The broker confines fire-department credentials to their district's topics: this one publishes on its own.
    const r = await mosquittoPub(['-p', new URL(hub.brokerUrl).port, '-u', logins.fdSouth!.username, '-P', logins.fdSouth!.password, '-q', '1', '-t', topics.dispatchAck('south', first.eventId), '-m', '{"v":1,"operator":"intruder"}']);
    expect(r.code).toBe(0);
    await waitUntil('the refusal to be counted', () => metrics.get('cosafe_alarm_acks_refused_total', { channel: 'mqtt', reason: 'forbidden' }) === 1);
    const http = await hub.http(`/api/v1/alarms/${alarmId}/ack`, logins.fdSouth, { method: 'POST', body: '{}' });
    expect(http.status).toBe(403);
    expect((await hub.http(`/api/v1/alarms/${alarmId}`, logins.fdSouth)).status).toBe(403);
    const list = (await (await hub.http('/api/v1/alarms', logins.fdSouth)).json()) as { alarms: unknown[] };
    expect(list.alarms).toEqual([]);
    const mine = (await (await hub.http(`/api/v1/alarms/${alarmId}`, logins.fdNorth)).json()) as { alarm: { state: string }; journal: { kind: string; actor: string }[] };
    expect(mine.alarm.state).toBe('active-unacknowledged');
    expect(mine.journal.filter((j) => j.kind === 'ack-refused').map((j) => j.actor)).toEqual(['fd-south-1', 'fd-south-1']);
  });

  it('takes an acknowledgement over MQTT from the district, records who the broker says it was, and tells the gateway', async () => {
    const commands = await hub.subscribe(logins.gwNorth!, subscriptions.gatewayCommands('bakery-12', 'gw-1'));
    // The payload claims to be someone else: the broker stamps the real publisher.
    const payload = JSON.stringify({ v: 1, operator: 'Dispatcher Weber', identity: { id: 'ops', role: 'admin' } });
    const r = await mosquittoPub(['-p', new URL(hub.brokerUrl).port, '-u', logins.fdNorth!.username, '-P', logins.fdNorth!.password, '-q', '1', '-t', topics.dispatchAck('north', first.eventId), '-m', payload]);
    expect(r.code).toBe(0);
    let alarm: { state: string; ack: { by: string; channel: string; operator: string } } | undefined;
    await waitUntil('the alarm to be acknowledged', async () => {
      alarm = ((await (await hub.http(`/api/v1/alarms/${alarmId}`, logins.fdNorth)).json()) as { alarm: typeof alarm }).alarm;
      return alarm?.state === 'active-acknowledged';
    });
    expect(alarm!.ack).toMatchObject({ by: 'fd-north-3', channel: 'mqtt', operator: 'Dispatcher Weber' });
    await waitUntil('the gateway to be told', () => commands.messages().length > 0);
    expect(JSON.parse(commands.messages()[0]!)).toMatchObject({ alarmId, acknowledgedBy: 'fd-north-3', device: 'smoke-oven', channel: 'mqtt' });
  });

  it('makes a re-activated alarm unacknowledged again and sends a CAP Update', async () => {
    const again = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', location: 'ground floor, oven room' });
    await hub.publishEvent(logins.gwNorth!, again);
    const m = await received(fdNorth, (x) => x.eventId === again.eventId);
    expect(m).toMatchObject({ msgType: 'Update', alarmId, alarmState: 'active-unacknowledged' });
    expect(m.cap).toContain(`<references>cosafe-hub,${first.eventId},`);
    // A resend of the same event (the broker redelivers) changes nothing.
    await hub.publishEvent(logins.gwNorth!, again);
    await waitUntil('the resend to be recognised', () => hub.stack.metrics.total('cosafe_alarm_duplicate_events_total') >= 1);
    const j = (await (await hub.http(`/api/v1/alarms/${alarmId}`, logins.admin)).json()) as { journal: { kind: string; to: string }[] };
    expect(j.journal.filter((e) => e.kind === 'transition').map((e) => e.to)).toEqual(['active-unacknowledged', 'active-acknowledged', 'active-unacknowledged']);
  });

  it('cancels the alert when the alarm clears (CAP Cancel referencing it), and the acknowledgement over HTTP ends it', async () => {
    const clear = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', state: 'cleared', value: 0 });
    await hub.publishEvent(logins.gwNorth!, clear);
    const m = await received(fdNorth, (x) => x.eventId === clear.eventId);
    expect(m.msgType).toBe('Cancel');
    expect(m.alarmState).toBe('returned-unacknowledged');
    expect(m.cap).toContain('<msgType>Cancel</msgType>');
    expect(m.cap).toMatch(new RegExp(`<references>cosafe-hub,${first.eventId},\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d[+-]\\d\\d:\\d\\d</references>`));
    const cap = await hub.http(`/api/v1/alarms/${alarmId}`, logins.fdNorth, { headers: { accept: 'application/cap+xml' } });
    expect(cap.headers.get('content-type')).toContain('application/cap+xml');
    const xml = await cap.text();
    capSeen.push(xml);
    expect(xml).toContain('<msgType>Cancel</msgType>');
    const ack = await hub.http(`/api/v1/alarms/${alarmId}/ack`, logins.fdNorth, { method: 'POST', body: JSON.stringify({ operator: 'Weber' }) });
    expect(ack.status).toBe(200);
    expect(((await ack.json()) as { alarm: { state: string } }).alarm.state).toBe('normal');
  });

  it('escalates an alarm nobody acknowledges: sent again, and the next step told, until someone answers', async () => {
    const e = alarmEvent({ site: 'depot-3', gateway: 'gw-1', device: 'heat-1', condition: 'heat' });
    await hub.publishEvent(logins.gwSouth!, e);
    const alert = await received(fdSouth, (x) => x.eventId === e.eventId);
    const toDuty = await received(dutyOfficer, (x) => x.alarmId === alert.alarmId && x.escalation === 1);
    expect(toDuty.msgType).toBe('Update');
    expect(toDuty.cap).toContain('escalation step 1');
    await received(fdSouth, (x) => x.alarmId === alert.alarmId && x.escalation === 1);
    // It goes on: the last step repeats.
    await received(dutyOfficer, (x) => x.alarmId === alert.alarmId && x.escalation === 2);
    const ack = await hub.http(`/api/v1/alarms/${alert.alarmId}/ack`, logins.fdSouth, { method: 'POST', body: '{}' });
    expect(ack.status).toBe(200);
    const j = (await (await hub.http(`/api/v1/alarms/${alert.alarmId}`, logins.fdSouth)).json()) as { journal: { kind: string }[] };
    expect(j.journal.filter((x) => x.kind === 'escalated').length).toBeGreaterThanOrEqual(2);
    expect(j.journal.some((x) => x.kind === 'delivered')).toBe(true);
    expect(hub.stack.metrics.total('cosafe_alarm_escalations_total')).toBeGreaterThanOrEqual(2);
  });

  it('sends the alarm of an unregistered site to every fire department, loudly', async () => {
    const e = alarmEvent({ site: 'stray', gateway: 'gw-1' });
    await hub.publishEvent(logins.gwStray!, e);
    const a = await received(fdNorth, (x) => x.eventId === e.eventId);
    await received(fdSouth, (x) => x.eventId === e.eventId);
    expect(a.district).toBeUndefined();
    expect(a.cap).toContain('NOT REGISTERED');
    // Two alarms of the unregistered site went to everyone: its fire alarm, and the hub's trouble about the site.
    expect(hub.stack.metrics.get('cosafe_alarm_fallback_routes_total', { reason: 'unregistered' })).toBe(2);
    const health = (await (await hub.http('/health', hub.admin)).json()) as { dispatch: { unregisteredSites: string[] } };
    expect(health.dispatch.unregisteredSites).toContain('stray');
    expect(hub.stack.metrics.get('cosafe_site_problems_total', { problem: 'unregistered' })).toBeGreaterThanOrEqual(1);
    // Raised as trouble: an alarm of the hub's own, listed and journaled like any other, until the site is registered.
    type Listed = { alarms: { device: string; condition: string; class: string; state: string; site: string }[] };
    const trouble = async () => ((await (await hub.http('/api/v1/alarms', logins.admin)).json()) as Listed).alarms.find((x) => x.site === 'stray' && x.condition === 'site-unregistered');
    expect(await trouble()).toMatchObject({ device: 'cosafe-hub', class: 'trouble', state: 'active-unacknowledged' });
    const sites = SiteStore.open(siteStorePath(hub.dataDir));
    sites.put({ id: 'stray', name: 'Stray Kiosk', address: 'Am Rand 1, 10115 Berlin', location: { lat: 52.53, lon: 13.39 }, district: 'north' });
    sites.close();
    await hub.publishEvent(logins.gwStray!, alarmEvent({ site: 'stray', gateway: 'gw-1', state: 'cleared', condition: e.condition, device: e.device }));
    await waitUntil('the trouble to clear once the site is registered', async () => (await trouble())?.state === 'returned-unacknowledged');
  });

  it("raises a gateway whose credential names another district than the registry, and routes by the registry", async () => {
    const wrong = await hub.credential({ role: 'gateway', id: 'depot-3.gw-2', site: 'depot-3', gateway: 'gw-2', district: 'north' });
    const e = alarmEvent({ site: 'depot-3', gateway: 'gw-2', device: 'smoke-9' });
    await hub.publishEvent(wrong, e);
    expect(hub.stack.metrics.get('cosafe_site_problems_total', { problem: 'district-mismatch' })).toBe(1);
    const m = await received(fdSouth, (x) => x.eventId === e.eventId);
    expect(m.district).toBe('south');
    expect(fdNorth.alarms.some((a) => data(a).eventId === e.eventId)).toBe(false);
  });

  it('asks every caller of the private API who they are: Basic and bearer, and a revoked credential stops at once', async () => {
    expect((await hub.http('/api/v1/alarms')).status).toBe(401);
    expect((await hub.http('/api/v1/alarms', { username: 'fd-north-3', password: 'cosafe_wrong' })).status).toBe(401);
    const bearer = await fetch(`${hub.api}/api/v1/sites/bakery-12`, { headers: { authorization: `Bearer fd-north-3:${logins.fdNorth!.password}` } });
    expect(bearer.status).toBe(200);
    expect(((await bearer.json()) as { site: { contacts: unknown[] } }).site.contacts).toHaveLength(1);
    expect((await hub.http('/api/v1/sites/depot-3', logins.fdNorth)).status).toBe(403);
    hub.credentials.revoke('fd-north-3');
    expect((await hub.http('/api/v1/alarms', logins.fdNorth)).status).toBe(401);
    expect(hub.stack.metrics.total('cosafe_http_auth_failures_total')).toBeGreaterThanOrEqual(3);
    expect(hub.stack.metrics.total('cosafe_http_denied_total')).toBeGreaterThanOrEqual(3);
  });

  it('never refuses a fire alarm for what a device said about itself: a panel line with control characters is cleaned, counted and dispatched', async () => {
    // An older gateway did not clean its panels' words; the contract now refuses control characters in text.
    const e = { ...alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'panel-1', condition: 'fire-zone-{zone 3}' }), text: 'FIRE ZONE 3\r\n\u001b[2J', unit: 'a b' };
    await hub.publishEvent(logins.gwNorth!, e as never);
    const m = await received(fdNorth, (x) => x.eventId === e.eventId);
    expect(m.text).toBe('FIRE ZONE 3   [2J');
    expect(m.condition).toMatch(/^fire-zone-_zone_3_$/);
    expect(m.unit).toBeUndefined();
    expect(hub.stack.metrics.get('cosafe_sync_events_repaired_total', { class: 'fire' })).toBe(1);
  });
});
