// @ts-check
import { ConnectionIndicator } from '../shared/connection.js';
import { byId, clear, el, setText } from '../shared/dom.js';
import { api, listenToAlarms, session, signOut, when } from '../shared/session.js';

/*
 * What the hub's alarm stream sends (cloud-sync/http/alarm-view.ts); pages
 * import only the contract, so the shape is described here for the checker.
 */
/** @typedef {import('../../broker/contract/messages.js').AlarmEvent} AlarmEvent */
/** @typedef {{ at: number, kind: string, by: string, channel: string, detail?: string }} Step */
/** @typedef {{ name: string, role?: string, phone?: string, email?: string }} Contact */
/** @typedef {{ id: string, name: string, address: string, location: { lat: number, lon: number }, district: string, occupancy?: string, hazards?: string[], contacts?: Contact[], notes?: string }} SiteInfo */
/**
 * @typedef {{ id: string, site: string, device: string, condition: string, class: string, district: string | null, state: string, since: number,
 *   location: string | null, lastEvent: AlarmEvent, siteInfo: SiteInfo | null, escalationStep: number,
 *   ack: { by: string, at: number, channel: string, operator?: string } | null, shelved: { until: number, reason: string } | null,
 *   occurrence: { raisedAt: number, timeline: Step[] } | null }} Alarm
 */

/** The hub sends a heartbeat every 10 s: this long without anything and the console says it is offline. */
const SILENT_AFTER_MS = 25_000;
const OPERATOR_KEY = 'cosafe.console.operator';
const CLASS_WORDS = /** @type {Record<string, string>} */ ({ fire: 'Fire', gas: 'Gas', co: 'Carbon monoxide', waterflow: 'Sprinkler waterflow', intrusion: 'Intrusion', supervisory: 'Supervisory', trouble: 'Trouble' });
const STEP_WORDS = /** @type {Record<string, string>} */ ({ raised: 'raised by', 'raised-again': 'raised again by', delivered: 'delivered to', escalated: 'escalated by', acknowledged: 'acknowledged by', cleared: 'back to normal, said', routed: 'routed to every department by' });

const connection = new ConnectionIndicator(byId('connection'), {
  idle: 'Not connected yet.',
  live: 'Live: new alarms appear here at once.',
  lost: 'OFFLINE: the connection to the hub is lost. Trying again… Alarms shown here may be out of date: use your fallback line.',
});
const list = byId('alarms');
const none = byId('none');
const attention = byId('attention');
const operator = /** @type {HTMLInputElement} */ (byId('operator'));
const baseTitle = document.title;

/** @type {Map<string, Alarm>} */
let alarms = new Map();

const awaitsAck = (/** @type {Alarm} */ a) => a.state === 'active-unacknowledged' || a.state === 'returned-unacknowledged';

function stateWords(/** @type {Alarm} */ a) {
  if (a.state === 'active-unacknowledged') return 'NOT ACKNOWLEDGED';
  if (a.state === 'returned-unacknowledged') return 'Back to normal, NOT ACKNOWLEDGED';
  if (a.state === 'active-acknowledged' && a.ack) return `Acknowledged by ${a.ack.by}${a.ack.operator ? ` (${a.ack.operator})` : ''} at ${when(a.ack.at)}`;
  return a.state;
}

function siteBlock(/** @type {Alarm} */ a) {
  const s = a.siteInfo;
  if (!s) return el('div', {}, el('h4', {}, 'Site'), el('p', { class: 'problem' }, `Site ${a.site} is not in the registry: no address known. Call the gateway's operator.`));
  const { lat, lon } = s.location;
  return el(
    'div',
    {},
    el('h4', {}, 'Site'),
    el('p', { class: 'alarm__address' }, s.address),
    el(
      'p',
      { class: 'muted' },
      `Position ${lat.toFixed(5)}, ${lon.toFixed(5)} · `,
      el('a', { href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=18/${lat}/${lon}`, rel: 'noreferrer noopener', target: '_blank' }, 'map'),
    ),
    s.occupancy && el('p', {}, s.occupancy),
    s.notes && el('p', { class: 'muted' }, s.notes),
  );
}

function card(/** @type {Alarm} */ a) {
  const ackButton = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: 'ack', 'data-action': 'ack' }, 'Acknowledge'));
  ackButton.addEventListener('click', () => void acknowledge(a, ackButton));
  const hazards = a.siteInfo?.hazards ?? [];
  const contacts = a.siteInfo?.contacts ?? [];
  const steps = a.occurrence?.timeline ?? [];
  return el(
    'li',
    { class: 'alarm', 'data-alarm-id': a.id, 'data-state': a.state, 'data-class': a.class },
    el(
      'article',
      {},
      el('div', { class: 'alarm__head' }, el('span', { class: 'badge alarm__class' }, CLASS_WORDS[a.class] ?? a.class), el('span', { class: 'alarm__state' }, stateWords(a)), el('span', { class: 'muted' }, `since ${when(a.occurrence?.raisedAt ?? a.since)}`)),
      el('h3', { class: 'alarm__title' }, a.siteInfo?.name ?? a.site, ' · ', a.device, a.location && ` · ${a.location}`),
      a.lastEvent.text && el('p', { class: 'alarm__text' }, a.lastEvent.text),
      a.escalationStep > 0 && el('p', { class: 'problem' }, `Escalated: step ${a.escalationStep}`),
      el(
        'div',
        { class: 'alarm__grid' },
        siteBlock(a),
        el('div', {}, el('h4', {}, 'Hazards'), hazards.length ? el('ul', { class: 'hazards' }, ...hazards.map((h) => el('li', {}, h))) : el('p', { class: 'muted' }, 'none registered')),
        el(
          'div',
          {},
          el('h4', {}, 'Contacts'),
          contacts.length
            ? el('ul', {}, ...contacts.map((c) => el('li', {}, c.name, c.role && ` (${c.role})`, c.phone && ' · ', c.phone && el('a', { href: `tel:${c.phone.replace(/[^+0-9]/g, '')}` }, c.phone))))
            : el('p', { class: 'muted' }, 'none registered'),
        ),
        el('div', {}, el('h4', {}, 'Timeline'), el('ol', { class: 'timeline' }, ...steps.map((s) => el('li', { 'data-kind': s.kind }, `${when(s.at)} ${STEP_WORDS[s.kind] ?? s.kind} ${s.by}${s.detail ? ` (${s.detail})` : ''} · ${s.channel}`)))),
      ),
      awaitsAck(a) && ackButton,
    ),
  );
}

function render() {
  const shown = [...alarms.values()].filter((a) => a.state !== 'normal').sort((x, y) => Number(awaitsAck(y)) - Number(awaitsAck(x)) || (y.occurrence?.raisedAt ?? y.since) - (x.occurrence?.raisedAt ?? x.since));
  clear(list);
  for (const a of shown) list.append(card(a));
  none.hidden = shown.length > 0;
  const open = shown.filter(awaitsAck).length;
  attention.dataset.state = open ? 'unacknowledged' : shown.length ? 'acknowledged' : 'none';
  setText(attention, open ? `${open} UNACKNOWLEDGED ${open === 1 ? 'ALARM' : 'ALARMS'}` : shown.length ? `${shown.length} active, all acknowledged.` : 'No active alarm.');
  document.title = open ? `(${open}) UNACKNOWLEDGED ALARM · ${baseTitle}` : baseTitle;
}

async function acknowledge(/** @type {Alarm} */ a, /** @type {HTMLButtonElement} */ button) {
  button.disabled = true;
  setText(button, 'Acknowledging…');
  const name = operator.value.trim();
  try {
    const r = await api(`/api/v1/alarms/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: name ? { operator: name } : {} });
    alarms.set(r.alarm.id, r.alarm);
    render();
  } catch (err) {
    button.disabled = false;
    setText(button, 'Acknowledge');
    button.after(el('p', { class: 'problem', role: 'alert' }, `Not acknowledged: ${err instanceof Error ? err.message : String(err)}`));
  }
}

function listen() {
  listenToAlarms({
    silentAfterMs: SILENT_AFTER_MS,
    connection,
    onSnapshot: (/** @type {{ alarms: Alarm[] }} */ data) => {
      alarms = new Map(data.alarms.map((a) => [a.id, a]));
      render();
    },
    onAlarm: (/** @type {{ alarm: Alarm }} */ { alarm }) => {
      alarms.set(alarm.id, alarm);
      render();
    },
  });
}

async function start() {
  byId('sign-out').addEventListener('click', () => void signOut());
  try {
    operator.value = localStorage.getItem(OPERATOR_KEY) ?? '';
  } catch {
    // Private browsing: the name is asked for again.
  }
  operator.addEventListener('change', () => {
    try {
      localStorage.setItem(OPERATOR_KEY, operator.value.trim());
    } catch {
      // Not kept; still sent.
    }
  });
  const me = await session();
  setText(byId('who'), `Signed in as ${me.identity}${me.district ? ` · district ${me.district}` : ''}`);
  setText(byId('title'), me.district ? `Alarms · district ${me.district}` : 'Alarms');
  listen();
}

start().catch((err) => {
  if (err?.status !== 401) connection.set('lost', `(${err instanceof Error ? err.message : String(err)})`);
});
