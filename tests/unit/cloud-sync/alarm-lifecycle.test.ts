import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AlarmLifecycle } from '../../../cloud-sync/alarms/alarm-lifecycle.js';
import { AlarmStore } from '../../../cloud-sync/alarms/alarm-store.js';
import { DeliveryLog, type PendingDelivery } from '../../../cloud-sync/dispatch/delivery-log.js';
import { Departments } from '../../../cloud-sync/dispatch/departments.js';
import type { Site } from '../../../cloud-sync/registry/site.js';
import { buildConfig, type ConfigInput } from '../../../core/config.js';
import { silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import { openDurableDatabase } from '../../../core/sqlite.js';
import { alarmEvent } from '../../helpers/alarm-events.js';
import { ManualTime } from '../../helpers/manual-time.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwHO0v5u0v5u0=';
const sites: Record<string, Site> = {
  'bakery-12': { id: 'bakery-12', name: 'Bakery', address: 'Main St 1', location: { lat: 52.5, lon: 13.4 }, district: 'north', hazards: [], contacts: [] },
};
const cloudSync: ConfigInput['cloudSync'] = {
  fireDepartments: [
    { id: 'fd-north', district: 'north', url: 'http://127.0.0.1:9/a', secret: SECRET, classes: ['fire', 'trouble'] },
    { id: 'fd-central', district: 'central', url: 'http://127.0.0.1:9/b', secret: SECRET },
    { id: 'duty-officer', primary: false, url: 'http://127.0.0.1:9/c', secret: SECRET },
  ],
  alarms: { ackTimeoutSeconds: 90, districts: { north: { escalation: [{ notify: ['fd-central'] }, { notify: ['duty-officer'], afterSeconds: 60 }] } } },
};
const fdNorth = { id: 'fd-north-3', role: 'fire-department' as const, district: 'north' };
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A lifecycle on a dispatch database in a temporary directory; `reopen` is a restart of the hub. */
function harness(time = new ManualTime(), dir = mkdtempSync(join(tmpdir(), 'cosafe-lifecycle-')), o: { othersHaveAlarms?: boolean } = {}) {
  const config = buildConfig({ dataDir: dir, cloudSync });
  const db: Database.Database = openDurableDatabase(join(dir, 'dispatch.db'));
  const log = new DeliveryLog('');
  log.attach(db);
  const sent: PendingDelivery[] = [];
  const metrics = new Metrics();
  const lifecycle = new AlarmLifecycle({
    store: new AlarmStore(db),
    log,
    departments: new Departments(config.cloudSync.fireDepartments, config.cloudSync.alarms),
    config: config.cloudSync.alarms,
    sites: (s) => sites[s],
    scheduler: time,
    clock: time,
    logger: silentLogger,
    metrics,
    deliver: (p) => sent.push(p),
    ...o,
  });
  lifecycle.start();
  let closed = false;
  const close = () => {
    if (!closed) db.close();
    closed = true;
  };
  cleanups.push(() => {
    close();
    rmSync(dir, { recursive: true, force: true });
  });
  const delivered = (p: PendingDelivery) => {
    log.delivered(p.key);
    lifecycle.onDelivered(p, time.now());
  };
  return { lifecycle, sent, metrics, time, dir, close, delivered, targets: () => sent.map((p) => p.department) };
}

describe('the alarm lifecycle', () => {
  it('sends an alarm to its district, escalates it step after step while nobody acknowledges, and stops at the acknowledgement', () => {
    const h = harness();
    const e = alarmEvent({ site: 'bakery-12' });
    expect(h.lifecycle.onEvent(e)).toBe(true);
    expect(h.targets()).toEqual(['fd-north']);
    // Delivered 5 s later: the 90 s run from then.
    h.time.advance(5000);
    h.delivered(h.sent[0]!);
    h.time.advance(89_999);
    expect(h.sent).toHaveLength(1);
    h.time.advance(1);
    expect(h.targets().slice(1)).toEqual(['fd-north', 'fd-central']);
    // Step 2 waits its own 60 s, then the last step repeats for as long as nobody answers.
    h.time.advance(60_000);
    expect(h.targets().slice(3)).toEqual(['fd-north', 'fd-central', 'duty-officer']);
    h.time.advance(60_000);
    expect(h.sent).toHaveLength(9);
    expect(h.metrics.total('cosafe_alarm_escalations_total')).toBe(3);
    const alarm = h.lifecycle.list()[0]!;
    expect(h.lifecycle.acknowledge({ alarmId: alarm.id, who: fdNorth, channel: 'http' })).toMatchObject({ ok: true, already: false });
    h.time.advance(3_600_000);
    // After the acknowledgement: only the command to the gateway, no further escalation.
    expect(h.sent.slice(9).map((p) => p.message)).toEqual([expect.objectContaining({ topic: 'cosafe/v1/sites/bakery-12/gateways/gw-1/commands/alarm-ack' })]);
    const kinds = h.lifecycle.journal(alarm.id).map((j) => j.kind);
    expect(kinds.filter((k) => k === 'escalated')).toHaveLength(3);
    expect(kinds).toContain('delivered');
  });

  it('keeps the escalation due time through a restart: 60 s into its 90 s, it escalates 30 s after the hub is back', () => {
    const time = new ManualTime();
    const before = harness(time);
    before.lifecycle.onEvent(alarmEvent({ site: 'bakery-12' }));
    before.delivered(before.sent[0]!);
    const dueAt = time.now() + 90_000;
    time.advance(60_000);
    before.close();
    // The hub comes back (a new process: new lifecycle, new timers) on the same data.
    const after = harness(new ManualTime(time.now()), before.dir);
    const id = after.lifecycle.list()[0]!.id;
    expect(after.time.dueAt(`escalate:${id}`)).toBe(dueAt);
    after.time.advance(29_999);
    expect(after.sent).toHaveLength(0);
    after.time.advance(1);
    expect(after.targets()).toEqual(['fd-north', 'fd-central']);
    expect(after.lifecycle.journal(id).find((j) => j.kind === 'escalated')?.detail).toMatchObject({ step: 1, dueAt });
  });

  it('never clears on older evidence: a "cleared" that comes after a newer activation is journaled as late, and the alarm stays active', () => {
    const h = harness();
    const t = h.time.now();
    const [a1, c2, a3, c4] = [alarmEvent({ site: 'bakery-12', time: t }), alarmEvent({ site: 'bakery-12', state: 'cleared', time: t + 1000 }), alarmEvent({ site: 'bakery-12', time: t + 2000 }), alarmEvent({ site: 'bakery-12', state: 'cleared', time: t + 3000 })];
    // The detector went active, cleared, active again; the middle "cleared" arrives last (a resend after an outage).
    for (const e of [a1, a3, c2]) expect(h.lifecycle.onEvent(e)).toBe(true);
    const id = h.lifecycle.list()[0]!.id;
    expect(h.lifecycle.get(id)!.state).toBe('active-unacknowledged');
    expect(h.sent.map((p) => (p.message as { msgType?: string }).msgType)).toEqual(['Alert']);
    expect(h.lifecycle.journal(id).find((j) => j.kind === 'late')).toMatchObject({ eventId: c2.eventId, detail: { newerEvent: a3.eventId } });
    expect(h.metrics.total('cosafe_alarm_late_events_total')).toBe(1);
    // The same late event again is a duplicate; a newer "cleared" ends it.
    h.lifecycle.onEvent(c2);
    expect(h.metrics.total('cosafe_alarm_duplicate_events_total')).toBe(1);
    h.lifecycle.onEvent(c4);
    expect(h.lifecycle.get(id)!.state).toBe('returned-unacknowledged');
    expect(h.sent.map((p) => (p.message as { msgType?: string }).msgType)).toEqual(['Alert', 'Cancel']);
  });

  it('keeps the newest activation through an older one that comes late, so an older "cleared" still does not end the alarm', () => {
    const h = harness();
    const t = h.time.now();
    const [a1, c2, a3] = [alarmEvent({ site: 'bakery-12', time: t }), alarmEvent({ site: 'bakery-12', state: 'cleared', time: t + 1000 }), alarmEvent({ site: 'bakery-12', time: t + 2000 })];
    for (const e of [a3, a1, c2]) h.lifecycle.onEvent(e);
    const alarm = h.lifecycle.list()[0]!;
    expect(alarm.state).toBe('active-unacknowledged');
    expect(alarm.lastEvent.eventId).toBe(a3.eventId);
  });

  it('applies an activation whatever its time: a device whose clock was set back still raises its alarm, and clears it', () => {
    const h = harness();
    const t = h.time.now();
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', time: t }));
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', state: 'cleared', time: t + 1000 }));
    const id = h.lifecycle.list()[0]!.id;
    expect(h.lifecycle.get(id)!.state).toBe('returned-unacknowledged');
    // An hour behind from now on.
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', time: t - 3_600_000 }));
    expect(h.lifecycle.get(id)!.state).toBe('active-unacknowledged');
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', state: 'cleared', time: t - 3_599_000 }));
    expect(h.lifecycle.get(id)!.state).toBe('returned-unacknowledged');
    expect(h.sent.map((p) => (p.message as { msgType?: string }).msgType)).toEqual(['Alert', 'Cancel', 'Alert', 'Cancel']);
  });

  it('applies a resent event once, and makes a re-activated acknowledged alarm unacknowledged again', () => {
    const h = harness();
    const e = alarmEvent({ site: 'bakery-12' });
    h.lifecycle.onEvent(e);
    h.lifecycle.onEvent(e);
    expect(h.metrics.total('cosafe_alarm_duplicate_events_total')).toBe(1);
    const id = h.lifecycle.list()[0]!.id;
    h.lifecycle.acknowledge({ eventId: e.eventId, who: fdNorth, channel: 'mqtt', topicDistrict: 'north' });
    expect(h.lifecycle.get(id)!.state).toBe('active-acknowledged');
    // The same acknowledgement again changes nothing.
    expect(h.lifecycle.acknowledge({ eventId: e.eventId, who: fdNorth, channel: 'mqtt', topicDistrict: 'north' })).toMatchObject({ ok: true, already: true });
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12' }));
    expect(h.lifecycle.get(id)!.state).toBe('active-unacknowledged');
    expect(h.lifecycle.journal(id).filter((j) => j.kind === 'transition').map((j) => j.to)).toEqual(['active-unacknowledged', 'active-acknowledged', 'active-unacknowledged']);
  });

  it('refuses acknowledgements from other districts, other roles, and for an earlier occurrence', () => {
    const h = harness();
    const first = alarmEvent({ site: 'bakery-12' });
    h.lifecycle.onEvent(first);
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', state: 'cleared' }));
    h.lifecycle.acknowledge({ eventId: first.eventId, who: fdNorth, channel: 'http' });
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12' }));
    expect(h.lifecycle.acknowledge({ eventId: first.eventId, who: fdNorth, channel: 'mqtt', topicDistrict: 'north' })).toMatchObject({ ok: false, reason: 'stale' });
    expect(h.lifecycle.acknowledge({ eventId: first.eventId, who: { id: 'fd-s', role: 'fire-department', district: 'south' }, channel: 'mqtt', topicDistrict: 'south' })).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(h.lifecycle.acknowledge({ eventId: first.eventId, who: { id: 'gw', role: 'gateway' }, channel: 'http' })).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(h.metrics.total('cosafe_alarm_acks_refused_total')).toBe(3);
  });

  it('with cloud-sync workers: an acknowledgement of an alarm another worker has is not a refusal; one of its own still counts', () => {
    const worker = harness(new ManualTime(), undefined, { othersHaveAlarms: true });
    expect(worker.lifecycle.acknowledge({ eventId: 'evt_0123456789abcdef0123456789abcdef', who: fdNorth, channel: 'mqtt', topicDistrict: 'north' })).toMatchObject({ ok: false, reason: 'unknown' });
    expect(worker.metrics.total('cosafe_alarm_acks_refused_total')).toBe(0);
    const e = alarmEvent({ site: 'bakery-12' });
    worker.lifecycle.onEvent(e);
    expect(worker.lifecycle.acknowledge({ eventId: e.eventId, who: { id: 'fd-s', role: 'fire-department', district: 'south' }, channel: 'mqtt', topicDistrict: 'south' })).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(worker.metrics.total('cosafe_alarm_acks_refused_total')).toBe(1);
    // One worker alone: an unknown event is refused, as always.
    const alone = harness();
    alone.lifecycle.acknowledge({ eventId: 'evt_0123456789abcdef0123456789abcdef', who: fdNorth, channel: 'mqtt', topicDistrict: 'north' });
    expect(alone.metrics.total('cosafe_alarm_acks_refused_total')).toBe(1);
  });

  it('a worker that took a partition over and sees only the return to normal of an alarm it never had sends nothing: no false all-clear', () => {
    const h = harness();
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12', state: 'cleared' }));
    expect(h.sent).toEqual([]);
    // Its next activation is an alarm to it, sent as one.
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12' }));
    expect(h.targets()).toEqual(['fd-north']);
  });

  it('shelves a trouble signal for a while, with a reason, and never a fire alarm', () => {
    const h = harness();
    const admin = { id: 'ops', role: 'admin' as const };
    h.lifecycle.onEvent(alarmEvent({ site: 'bakery-12' }));
    const fire = h.lifecycle.list()[0]!.id;
    expect(h.lifecycle.shelve(fire, admin, 60, 'noisy')).toMatchObject({ ok: false, reason: 'not-shelvable' });
    h.lifecycle.acknowledge({ alarmId: fire, who: fdNorth, channel: 'http' });
    const trouble = alarmEvent({ site: 'bakery-12', class: 'trouble', condition: 'comm-lost', device: 'temp-1' });
    h.lifecycle.onEvent(alarmEvent({ class: 'trouble', condition: 'comm-lost', device: 'temp-1', site: 'bakery-12', state: 'cleared' }));
    const id = h.lifecycle.list({ includeNormal: true }).find((a) => a.class === 'trouble')!.id;
    expect(h.lifecycle.shelve(id, fdNorth, 60, 'noisy')).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(h.lifecycle.shelve(id, admin, 60, '')).toMatchObject({ ok: false, reason: 'invalid' });
    expect(h.lifecycle.shelve(id, admin, 60, 'sensor replaced tomorrow')).toMatchObject({ ok: true });
    const before = h.sent.length;
    h.lifecycle.onEvent(trouble);
    // Shelved: journaled, not sent.
    expect(h.sent.length).toBe(before);
    h.time.advance(60 * 60_000);
    expect(h.lifecycle.get(id)!.shelved).toBeNull();
    expect(h.sent.slice(before).map((p) => [p.department, (p.message as { msgType?: string }).msgType])).toEqual([['fd-north', 'Alert']]);
  });
});
