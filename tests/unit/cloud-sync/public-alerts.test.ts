import { cellToParent, getResolution, latLngToCell } from 'h3-js';
import { describe, expect, it } from 'vitest';
import type { AlarmRecord } from '../../../cloud-sync/alarms/alarm-store.js';
import { agencySummary, quantile } from '../../../cloud-sync/agency/agency-summary.js';
import { areaConcerns, parseCells, publicArea, topicCells } from '../../../cloud-sync/public/public-area.js';
import { policyFor, publicDecision } from '../../../cloud-sync/public/public-policy.js';
import { alertTexts } from '../../../cloud-sync/public/public-texts.js';
import { buildConfig } from '../../../core/config.js';
import { alarmEvent } from '../../helpers/alarm-events.js';

const config = (pub: Record<string, unknown> = {}) => buildConfig({ cloudSync: { public: pub } }).cloudSync.public;
const alarm = (o: Partial<AlarmRecord> = {}): AlarmRecord => ({
  id: 'alm_1',
  site: 'bakery',
  device: 'smoke',
  condition: 'smoke',
  class: 'fire',
  district: 'north',
  state: 'active-unacknowledged',
  activation: 1,
  activatingEvent: 'evt_1',
  lastEvent: alarmEvent(),
  since: 0,
  alertId: 'evt_1',
  alertSent: 0,
  ack: null,
  shelved: null,
  escalationStep: 0,
  escalationDue: null,
  dispatchedAt: 0,
  firstDeliveredAt: 0,
  notified: [],
  updatedAt: 0,
  publicWarning: null,
  ...o,
});
const ctx = (pub: Record<string, unknown> = {}) => ({ config: config(pub), status: 'Actual' as const, registered: true });

describe('which alarms become public (policy per district and class)', () => {
  it('waits for a fire department\'s word by default, and follows it both ways', () => {
    expect(publicDecision(alarm(), ctx())).toEqual({ public: false, why: 'awaiting-confirmation' });
    const warn = { warn: true, by: 'fd', at: 1, channel: 'mqtt' };
    expect(publicDecision(alarm({ state: 'active-acknowledged', publicWarning: warn }), ctx())).toEqual({ public: true, hazard: 'fire', confirmed: true });
    expect(publicDecision(alarm({ state: 'active-acknowledged', publicWarning: { ...warn, warn: false } }), ctx())).toEqual({ public: false, why: 'department-ended' });
    // The all-clear: back to normal ends it, acknowledged or not.
    for (const state of ['normal', 'returned-unacknowledged'] as const) expect(publicDecision(alarm({ state, publicWarning: warn }), ctx()).public).toBe(false);
  });

  it('is auto or never per district and class, and never public for trouble, supervisory, intrusion, test events or a Test hub', () => {
    const c = { policy: { classes: { gas: 'auto' }, districts: { north: { classes: { fire: 'auto' } }, south: { default: 'never' } } } };
    expect(policyFor(config(c), 'north', 'fire')).toBe('auto');
    expect(policyFor(config(c), 'east', 'fire')).toBe('on-confirmation');
    expect(policyFor(config(c), 'east', 'gas')).toBe('auto');
    expect(policyFor(config(c), 'south', 'gas')).toBe('never');
    expect(publicDecision(alarm(), ctx(c))).toEqual({ public: true, hazard: 'fire', confirmed: false });
    expect(publicDecision(alarm({ class: 'waterflow' }), ctx(c)).public).toBe(false);
    expect(publicDecision(alarm({ district: 'south' }), ctx(c))).toEqual({ public: false, why: 'policy-never' });
    for (const cls of ['trouble', 'supervisory', 'intrusion'] as const) expect(publicDecision(alarm({ class: cls }), ctx({ policy: { default: 'auto' } }))).toEqual({ public: false, why: 'never-public' });
    expect(publicDecision(alarm({ lastEvent: alarmEvent({ test: true }) }), ctx(c))).toEqual({ public: false, why: 'test-event' });
    expect(publicDecision(alarm(), { ...ctx(c), status: 'Test' })).toEqual({ public: false, why: 'test-status' });
    expect(publicDecision(alarm(), { ...ctx(c), registered: false })).toEqual({ public: false, why: 'unregistered' });
  });

  it('rejects a language without its words, and fills English from the built-in texts', () => {
    const err = (() => {
      try {
        config({ languages: ['en', 'de'] });
      } catch (e) {
        return e as { details: string[] };
      }
    })();
    expect(err?.details.join('\n')).toContain('public.languages[1]: language "de" needs texts.fire.de.headline');
    const texts = alertTexts(config({ languages: ['de', 'en'], texts: { fire: { de: { headline: 'Brand in Ihrer Nähe', instruction: 'Fenster schließen.' } }, gas: { de: { headline: 'Gas', instruction: 'Weg.' } }, co: { de: { headline: 'CO', instruction: 'Raus.' } } } }), 'fire', false);
    expect(texts.map((t) => [t.lang, t.headline])).toEqual([['de', 'Brand in Ihrer Nähe'], ['en', 'Fire in your neighbourhood']]);
  });
});

describe('the area of a public alert (H3, k registered sites per cell)', () => {
  const bakery = { lat: 52.5301, lon: 13.3849 };
  const neighbours = [bakery, { lat: 52.5305, lon: 13.3858 }, { lat: 52.5296, lon: 13.3841 }];
  const c = { resolution: 8, coarsestResolution: 5, minSitesPerCell: 3, ring: 1 };

  it('stays at resolution 8 when k sites share the cell, and widens while fewer do', () => {
    const a = publicArea(bakery, neighbours, c);
    expect(a).toMatchObject({ resolution: 8, sitesInCell: 3 });
    expect(a.cells).toHaveLength(7);
    expect(a.cells).toContain(latLngToCell(bakery.lat, bakery.lon, 8));
    const alone = publicArea(bakery, [bakery], c);
    expect(alone.resolution).toBe(5);
    expect(alone.sitesInCell).toBe(1);
    const two = publicArea(bakery, neighbours.slice(0, 2), { ...c, minSitesPerCell: 2 });
    expect(two.resolution).toBe(8);
    expect(two.cells.every((x) => getResolution(x) === 8)).toBe(true);
  });

  it('concerns a subscription of the cell, of a parent or of a child, and nothing beside it', () => {
    const a = publicArea(bakery, neighbours, { ...c, ring: 0 });
    const fine = latLngToCell(bakery.lat, bakery.lon, 8);
    expect(areaConcerns(a, [fine])).toBe(true);
    expect(areaConcerns(a, [cellToParent(fine, 5)])).toBe(true);
    expect(areaConcerns(a, [latLngToCell(bakery.lat, bakery.lon, 10)])).toBe(true);
    expect(areaConcerns(a, [latLngToCell(52.51, 13.36, 8)])).toBe(false);
    expect(topicCells(a, 5)).toEqual([fine, cellToParent(fine, 7), cellToParent(fine, 6), cellToParent(fine, 5)].sort());
  });

  it('takes only H3 cells in a query', () => {
    expect(parseCells('881f1d488bfffff,851f1d4bfffffff')).toEqual({ ok: true, cells: ['881f1d488bfffff', '851f1d4bfffffff'] });
    expect(parseCells('<script>').ok).toBe(false);
    expect(parseCells('881f1d488bffff0').ok).toBe(false);
  });
});

describe('agency statistics', () => {
  it('interpolates quantiles between ranks', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([10], 0.9)).toBe(10);
    expect(quantile([10, 20, 30, 40], 0.5)).toBe(25);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBeCloseTo(9.1);
  });

  it('counts occurrences per day and class, times acknowledgements, and leaves walk tests out', () => {
    const now = Date.UTC(2026, 11, 2, 12);
    const t = (alarmId: string, at: number, from: string, to: string, channel = 'mqtt-event', extra = {}) => ({ alarmId, at, from, to, channel, district: 'north', class: 'fire' as const, site: 's1', condition: 'smoke', test: 0, ...extra }) as never;
    const s = agencySummary({
      district: 'north',
      now,
      windowDays: 2,
      sites: [{ id: 's1' }, { id: 's2' }],
      gateways: [{ status: { v: 1, gateway: 'gw', site: 's1', state: 'online', boot: 'b', since: 0 }, devices: [{ id: 'd1', commLost: false }, { id: 'd2', commLost: true }] }],
      open: [alarm({ site: 's1', device: 'd2', class: 'trouble', state: 'active-unacknowledged' })],
      transitions: [
        t('a', now - 86_400_000, 'normal', 'active-unacknowledged'),
        t('a', now - 86_400_000 + 30_000, 'active-unacknowledged', 'active-acknowledged', 'http'),
        t('b', now - 1000, 'normal', 'active-unacknowledged'),
        t('b', now, 'active-unacknowledged', 'active-acknowledged', 'mqtt'),
        t('c', now - 500, 'normal', 'active-unacknowledged', 'mqtt-event', { test: 1 }),
        t('c', now, 'active-unacknowledged', 'active-acknowledged', 'mqtt', { test: 0 }),
        t('g', now - 100, 'normal', 'active-unacknowledged', 'mqtt-event', { class: 'trouble', condition: 'telemetry-dropped' }),
      ],
    });
    expect(s.sites).toEqual({ registered: 2, online: 1 });
    expect(s.devices).toEqual({ known: 2, online: 1, silent: 1, inTrouble: 1 });
    expect(s.alarms.perDay).toEqual([{ day: '2026-12-01', classes: { fire: 1 } }, { day: '2026-12-02', classes: { fire: 1, trouble: 1 } }]);
    expect(s.timeToAcknowledge).toEqual({ count: 2, medianSeconds: 15.5, p90Seconds: 27.1, windowDays: 2 });
    expect(s.drops.telemetryEpisodes).toBe(1);
  });
});
