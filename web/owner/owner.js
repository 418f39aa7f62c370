// @ts-check
import { ConnectionIndicator } from '../shared/connection.js';
import { byId, clear, el, setText } from '../shared/dom.js';
import { ago, api, listenToAlarms, session, signOut, when } from '../shared/session.js';
// @ts-ignore: a URL the hub serves from node_modules (uplot), not a path on disk
import uPlot from '/vendor/uplot/uPlot.esm.js';

/*
 * The shapes below are what the hub's private API answers (cloud-sync/http/
 * site-devices.ts, alarm-history.ts): pages import only the contract, so they
 * are described here for the type checker, not imported.
 */
/** @typedef {'alarm' | 'trouble' | 'silent' | 'ok' | 'unknown'} DeviceState */
/** @typedef {{ metric: string, value: number, unit: string, quality: string, time: number }} Reading */
/** @typedef {{ by: string, role: string, at: number, channel: string, operator?: string }} Ack */
/** @typedef {{ alarmId: string, condition: string, class: string, state: string, since: number, text: string | null, ack: Ack | null }} Condition */
/** @typedef {{ id: string, gateway: string | null, profile: string | null, transport: string | null, location: string | null, state: DeviceState, lastSeen: number | null, readings: Reading[], battery: { value: number, time: number, low: boolean } | null, conditions: Condition[], fix: string[] }} Device */
/** @typedef {{ gateway: string, state: 'online' | 'offline', since: number, waiting: { events: number, readings: number } | null }} GatewayView */
/** @typedef {{ id: string, name?: string, address?: string }} SiteEntry */
/** @typedef {{ site: SiteEntry, now: number, devices: Device[], gateways: GatewayView[] }} SiteDevices */
/** @typedef {{ alarmId: string, raisedAt: number, acknowledged: { by: string, at: number, channel: string, operator?: string } | null, clearedAt: number | null, state: string, device: string | null, condition: string | null, class: string | null, location: string | null, escalations: number, firstDeliveredAt: number | null }} Occurrence */

/** How often the devices are read again (alarms come at once, over the stream). */
const REFRESH_MS = 15_000;
/** The hub sends a heartbeat every 10 s. */
const SILENT_AFTER_MS = 30_000;

const WORDS = /** @type {Record<DeviceState, string>} */ ({ alarm: 'Alarm', trouble: 'Needs attention', silent: 'Silent', ok: 'OK', unknown: 'Not heard yet' });
const CLASS_WORDS = /** @type {Record<string, string>} */ ({ fire: 'Fire alarm', gas: 'Gas alarm', co: 'Carbon monoxide alarm', waterflow: 'Sprinkler waterflow', intrusion: 'Intrusion', supervisory: 'Supervisory', trouble: 'Trouble' });

const connection = new ConnectionIndicator(byId('connection'), {
  live: 'Live: alarms and acknowledgements appear here as they happen.',
  lost: 'Connection to the hub lost. Trying again… What is shown may be out of date.',
});
const main = byId('sites');
/** @type {string[]} */
let sites = [];
/** @type {Map<string, SiteEntry>} */
let registry = new Map();
/** Each site's section, kept across refreshes so an open "details" or a chart stays open. */
/** @type {Map<string, { root: HTMLElement, summary: HTMLElement, gateways: HTMLElement, devices: HTMLElement, history: HTMLElement, chart: Chart }>} */
const sections = new Map();

/** @param {Reading} r */
const valueText = (r) => (r.unit === 'bool' ? (r.value ? 'yes' : 'no') : `${Number.isInteger(r.value) ? r.value : r.value.toFixed(2)} ${r.unit}`);

/** The site's state in one sentence: what a person must know first. */
function summaryOf(/** @type {Device[]} */ devices) {
  const worst = devices[0]?.state ?? 'unknown';
  const named = (/** @type {Device[]} */ ds) => ds.map((d) => (d.location ? `${d.id} (${d.location})` : d.id)).join(', ');
  const alarms = devices.filter((d) => d.state === 'alarm');
  if (alarms.length) {
    const kinds = [...new Set(alarms.flatMap((d) => d.conditions.map((c) => CLASS_WORDS[c.class] ?? c.class)))].join(', ');
    return { state: 'alarm', text: `${kinds.toUpperCase()}: ${named(alarms)}` };
  }
  const attention = devices.filter((d) => d.state === 'trouble' || d.state === 'silent');
  if (attention.length) return { state: worst, text: `${attention.length === 1 ? '1 device needs' : `${attention.length} devices need`} attention: ${named(attention)}` };
  if (!devices.length || devices.every((d) => d.state === 'unknown')) return { state: 'unknown', text: 'No device has reported yet.' };
  const ok = devices.filter((d) => d.state === 'ok').length;
  return { state: 'ok', text: ok === devices.length ? `All ${ok} devices work.` : `${ok} of ${devices.length} devices work; the others have not reported yet.` };
}

function ackText(/** @type {{ by: string, at: number, channel: string, operator?: string } | null} */ a) {
  if (!a) return el('span', { class: 'unacked' }, 'not acknowledged yet');
  return el('span', { class: 'acked' }, `acknowledged by ${a.by}${a.operator ? ` (${a.operator})` : ''} at ${when(a.at)}, over ${a.channel}`);
}

function deviceItem(/** @type {Device} */ d, /** @type {number} */ now) {
  const values = d.readings.filter((r) => r.metric !== 'battery');
  const newest = Math.max(...values.map((r) => r.time));
  return el(
    'li',
    { class: 'device', 'data-state': d.state, 'data-device': d.id },
    el('span', { class: 'badge' }, WORDS[d.state]),
    el('span', { class: 'device__name' }, d.id),
    d.location && el('span', { class: 'muted' }, d.location),
    el(
      'p',
      { class: 'device__line' },
      values.length ? `${values.slice(0, 3).map((r) => `${r.metric.replaceAll('_', ' ')} ${valueText(r)}`).join(' · ')}, ${ago(newest, now)}` : `last heard ${ago(d.lastSeen, now)}`,
      d.battery && ` · battery ${d.battery.value} %`,
    ),
    ...d.conditions.map((c) => el('p', { class: 'device__line', 'data-condition': c.condition }, `${CLASS_WORDS[c.class] ?? c.class}${c.text ? `: ${c.text}` : ''} since ${when(c.since)}${c.state === 'returned-unacknowledged' ? ' (back to normal)' : ''} · `, ackText(c.ack))),
    d.fix.length > 0 && el('ul', { class: 'device__fix' }, ...d.fix.map((f) => el('li', {}, f))),
    el(
      'details',
      {},
      el('summary', {}, 'Details'),
      el(
        'table',
        {},
        el('tbody', {}, ...d.readings.map((r) => el('tr', {}, el('th', {}, r.metric), el('td', {}, valueText(r)), el('td', {}, `${ago(r.time, now)}${r.quality !== 'good' ? ` (${r.quality})` : ''}`)))),
      ),
      el('p', { class: 'muted' }, `profile ${d.profile ?? 'unknown'} · ${d.transport ?? 'transport unknown'} · gateway ${d.gateway ?? 'unknown'} · last heard ${ago(d.lastSeen, now)}`),
    ),
  );
}

function historyTable(/** @type {Occurrence[]} */ occurrences) {
  if (!occurrences.length) return el('p', { class: 'muted' }, 'No alarm in the last 7 days.');
  return el(
    'div',
    { class: 'scroll' },
    el(
      'table',
      { class: 'history' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Raised'), el('th', {}, 'Device'), el('th', {}, 'What'), el('th', {}, 'Acknowledged'), el('th', {}, 'Back to normal'))),
      el(
        'tbody',
        {},
        ...occurrences.map((o) =>
          el(
            'tr',
            { 'data-alarm-id': o.alarmId },
            el('td', {}, when(o.raisedAt)),
            el('td', {}, o.device ?? '?', o.location && el('div', { class: 'muted' }, o.location)),
            el('td', {}, CLASS_WORDS[o.class ?? ''] ?? o.class ?? '?', o.escalations > 0 && el('div', { class: 'muted' }, `escalated ${o.escalations}×`)),
            el('td', {}, ackText(o.acknowledged)),
            el('td', {}, o.clearedAt ? when(o.clearedAt) : 'still active'),
          ),
        ),
      ),
    ),
  );
}

/** A chart of one metric of one device over the last hours (uPlot, served by the hub). */
class Chart {
  constructor(/** @type {string} */ site) {
    this.site = site;
    this.metric = /** @type {HTMLSelectElement} */ (el('select', { name: 'series' }));
    this.hours = /** @type {HTMLSelectElement} */ (el('select', { name: 'hours' }, el('option', { value: '1' }, 'last hour'), el('option', { value: '6', selected: true }, 'last 6 hours'), el('option', { value: '24' }, 'last 24 hours')));
    this.area = el('div', { class: 'chart' });
    this.words = el('p', { class: 'muted chart-summary' });
    this.root = el(
      'section',
      {},
      el('h3', {}, 'Chart'),
      el('div', { class: 'chart-form' }, el('label', {}, 'Device and value ', this.metric), el('label', {}, 'Time ', this.hours)),
      this.area,
      this.words,
    );
    /** @type {any} */
    this.plot = undefined;
    /** What the plot shows now: device/metric/hours. */
    this.drawn = '';
    this.metric.addEventListener('change', () => void this.draw());
    this.hours.addEventListener('change', () => void this.draw());
  }

  /** Offers every device and metric the site has, keeping the one chosen. */
  offer(/** @type {Device[]} */ devices) {
    const chosen = this.metric.value;
    const options = devices.flatMap((d) => d.readings.map((r) => `${d.id}/${r.metric}`)).sort();
    if (options.join() === [...this.metric.options].map((o) => o.value).join()) return;
    clear(this.metric);
    for (const o of options) this.metric.append(el('option', { value: o, selected: o === chosen }, o.replace('/', ' · ').replaceAll('_', ' ')));
  }

  async draw() {
    const [device, metric] = this.metric.value.split('/');
    if (!device || !metric) return;
    const since = Date.now() - Number(this.hours.value) * 3_600_000;
    const q = new URLSearchParams({ site: this.site, device, metric, since: String(since), limit: '5000' });
    const { readings } = /** @type {{ readings: Reading[] }} */ (await api(`/api/v1/readings/history?${q}`));
    const points = readings.slice().reverse();
    const xs = points.map((r) => r.time / 1000);
    const ys = points.map((r) => r.value);
    const unit = points[0]?.unit ?? '';
    if (!points.length) setText(this.words, `No ${metric.replaceAll('_', ' ')} of ${device} in this time.`);
    else setText(this.words, `${points.length} readings of ${metric.replaceAll('_', ' ')} (${unit}) from ${device}: lowest ${Math.min(...ys)}, highest ${Math.max(...ys)}, last ${ys.at(-1)} at ${when(/** @type {Reading} */ (points.at(-1)).time)}.`);
    const key = `${this.metric.value}/${this.hours.value}`;
    if (this.plot && this.drawn === key) {
      // The same series with newer readings: new data, no new chart (no flicker every refresh).
      this.plot.setData([xs, ys]);
      return;
    }
    this.drawn = key;
    const width = Math.max(280, this.area.clientWidth || 600);
    const opts = { width, height: 220, series: [{}, { label: `${device} ${metric}`, stroke: '#1a5fb4', width: 2 }], axes: [{}, { label: unit }], legend: { show: true } };
    this.plot?.destroy();
    clear(this.area);
    this.plot = new uPlot(opts, [xs, ys], this.area);
  }
}

function sectionFor(/** @type {string} */ site) {
  let s = sections.get(site);
  if (s) return s;
  const entry = registry.get(site);
  const chart = new Chart(site);
  const summary = el('p', { class: 'summary', role: 'status', 'data-state': 'unknown' }, 'Reading…');
  const gateways = el('div', { class: 'gateways' });
  const devices = el('ul', { class: 'devices' });
  const history = el('div', {});
  const root = el(
    'section',
    { class: 'site', 'data-site': site, 'aria-labelledby': `site-${site}` },
    el('h2', { id: `site-${site}` }, entry?.name ?? site),
    entry?.address && el('p', { class: 'site__address' }, entry.address),
    summary,
    gateways,
    el('h3', {}, 'Devices'),
    devices,
    el('h3', {}, 'Alarms of the last 7 days'),
    history,
    chart.root,
  );
  main.append(root);
  s = { root, summary, gateways, devices, history, chart };
  sections.set(site, s);
  return s;
}

async function refresh(/** @type {string} */ site) {
  const s = sectionFor(site);
  const [data, hist] = await Promise.all([
    /** @type {Promise<SiteDevices>} */ (api(`/api/v1/sites/${encodeURIComponent(site)}/devices`)),
    /** @type {Promise<{ occurrences: Occurrence[] }>} */ (api(`/api/v1/sites/${encodeURIComponent(site)}/alarm-history`)),
  ]);
  const sum = summaryOf(data.devices);
  s.summary.dataset.state = sum.state;
  setText(s.summary, sum.text);
  clear(s.gateways);
  for (const g of data.gateways) {
    s.gateways.append(
      el('p', { 'data-state': g.state }, `Gateway ${g.gateway}: ${g.state} since ${when(g.since)}`, g.waiting && (g.waiting.events || g.waiting.readings) ? ` · waiting to send: ${g.waiting.events} alarms/events, ${g.waiting.readings} readings` : ''),
    );
  }
  if (!data.gateways.length) s.gateways.append(el('p', { 'data-state': 'offline' }, 'No gateway of this site has reported to the hub since it started.'));
  // The devices are drawn again; a device whose details the person opened keeps them open.
  const opened = new Set([...s.devices.querySelectorAll('li.device')].filter((li) => li.querySelector('details')?.open).map((li) => li.getAttribute('data-device')));
  clear(s.devices);
  for (const d of data.devices) {
    const item = deviceItem(d, data.now);
    if (opened.has(d.id)) /** @type {HTMLDetailsElement} */ (item.querySelector('details')).open = true;
    s.devices.append(item);
  }
  clear(s.history);
  s.history.append(historyTable(hist.occurrences));
  s.chart.offer(data.devices);
  // The chart follows the newest readings too.
  await s.chart.draw();
}

async function refreshAll() {
  await Promise.all(sites.map((site) => refresh(site)));
}

/** Alarms and acknowledgements reach the page at once: a change of any of my alarms re-reads that site. */
function listen() {
  listenToAlarms({
    silentAfterMs: SILENT_AFTER_MS,
    connection,
    onAlarm: (/** @type {{ alarm: { site: string } }} */ { alarm }) => {
      if (sites.includes(alarm.site)) void refresh(alarm.site).catch(() => {});
    },
  });
}

async function start() {
  byId('sign-out').addEventListener('click', () => void signOut());
  const me = await session();
  if (me.role !== 'owner' && me.role !== 'admin') {
    setText(byId('who'), `Signed in as ${me.identity} (${me.role}): this page is for building owners.`);
    return;
  }
  setText(byId('who'), `Signed in as ${me.identity}`);
  const known = /** @type {{ sites: SiteEntry[] }} */ (await api('/api/v1/sites'));
  registry = new Map(known.sites.map((s) => [s.id, s]));
  sites = me.sites ?? known.sites.map((s) => s.id);
  await refreshAll();
  listen();
  setInterval(() => void refreshAll().catch(() => connection.set('lost')), REFRESH_MS);
}

start().catch((err) => {
  if (err?.status !== 401) connection.set('lost', `(${err instanceof Error ? err.message : String(err)})`);
});
