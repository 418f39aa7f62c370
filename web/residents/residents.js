// @ts-check
import { ConnectionIndicator, watchdog } from '../shared/connection.js';
import { byId, clear, el, setText } from '../shared/dom.js';
import { cellToParent, latLngToCell } from '../shared/h3.js';

/** @typedef {import('../../broker/contract/public-alerts.js').PublicAlert} PublicAlert */
/** @typedef {import('../../broker/contract/public-alerts.js').PublicAlertText} PublicAlertText */
/** @typedef {import('../../broker/contract/public-alerts.js').PublicConfigView} PublicConfigView */

const API = '/public/v1';
/** The hub sends a heartbeat every 15 s: this long without anything and the page says the connection is lost. */
const SILENT_AFTER_MS = 40_000;
const STORAGE_KEY = 'cosafe.residents.location';

const connection = new ConnectionIndicator(byId('connection'), { idle: 'Not connected yet: give your location below.' });
const list = byId('alerts');
const none = byId('none');
const place = byId('place');
const locateError = byId('locate-error');

/** @type {PublicConfigView} */
let config;
/** This resident's cells, by resolution: worked out here, never sent (but for the coarsest). */
/** @type {Map<number, string>} */
let mine = new Map();
/** @type {Map<string, PublicAlert>} */
let alerts = new Map();
/** @type {EventSource | undefined} */
let source;
let lastEventId = '';
let retryMs = 1000;
const silence = watchdog(SILENT_AFTER_MS, () => {
  connection.set('lost');
  reconnect();
});

/** Whether an alert's area holds this resident's cell of the alert's resolution. */
function concernsMe(/** @type {PublicAlert} */ a) {
  const cell = mine.get(a.area.resolution);
  return cell !== undefined && a.area.cells.includes(cell);
}

/** The alert's words in the reader's language, else the hub's first. */
function textOf(/** @type {PublicAlert} */ a) {
  for (const lang of navigator.languages ?? [navigator.language]) {
    const t = a.texts.find((x) => x.lang === lang) ?? a.texts.find((x) => x.lang === lang.split('-')[0]);
    if (t) return t;
  }
  return a.texts[0];
}

const time = (/** @type {number} */ ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function card(/** @type {PublicAlert} */ a) {
  const t = /** @type {PublicAlertText} */ (textOf(a));
  const active = a.state === 'active';
  return el(
    'li',
    { class: 'alert', 'data-state': a.state, 'data-alert-id': a.id },
    el(
      'article',
      {},
      el('p', { class: 'alert__state' }, active ? 'Active' : 'Over'),
      a.status === 'Exercise' && el('p', { class: 'alert__exercise' }, 'Exercise: not a real emergency.'),
      el('h3', {}, t.headline),
      el('p', { class: 'alert__instruction' }, t.instruction),
      el(
        'p',
        { class: 'alert__meta' },
        `${t.event} · ${a.confirmed ? 'confirmed by the fire department' : 'reported by automatic fire alarms'} · since ${time(a.sent)}`,
        a.ended ? ` · over since ${time(a.ended)}` : '',
      ),
    ),
  );
}

function render() {
  const shown = [...alerts.values()].sort((x, y) => Number(y.state === 'active') - Number(x.state === 'active') || y.updated - x.updated);
  clear(list);
  for (const a of shown) list.append(card(a));
  none.hidden = shown.length > 0;
  if (!shown.length) setText(none, mine.size ? 'No alerts for your neighbourhood.' : 'Give your location below to see the alerts of your neighbourhood.');
}

/** Every message, shown or not, moves this on: a test (or a curious resident) can see the page is listening. */
function heard(/** @type {MessageEvent} */ e) {
  if (e.lastEventId) lastEventId = e.lastEventId;
  list.dataset.lastEventId = lastEventId;
  silence.touch();
  retryMs = 1000;
  if (connection.state !== 'live') connection.set('live');
}

function subscribe() {
  source?.close();
  const coarse = mine.get(config.coarsestResolution);
  if (!coarse) return;
  connection.set('connecting');
  // Only the coarse cell leaves the device; EventSource resends Last-Event-ID by itself on its own reconnects.
  const resume = lastEventId ? `&lastEventId=${encodeURIComponent(lastEventId)}` : '';
  const es = new EventSource(`${API}/alerts/stream?cells=${coarse}${resume}`);
  source = es;
  silence.touch();
  es.addEventListener('snapshot', (e) => {
    const data = /** @type {{ alerts: PublicAlert[] }} */ (JSON.parse(e.data));
    alerts = new Map(data.alerts.filter(concernsMe).map((a) => [a.id, a]));
    render();
    heard(e);
  });
  es.addEventListener('alert', (e) => {
    const a = /** @type {PublicAlert} */ (JSON.parse(e.data));
    if (concernsMe(a)) {
      alerts.set(a.id, a);
      render();
    }
    heard(e);
  });
  es.addEventListener('heartbeat', (e) => heard(/** @type {MessageEvent} */ (e)));
  es.addEventListener('error', () => {
    connection.set('lost');
    // CONNECTING: the browser tries again by itself. CLOSED (an error answer): we do, a little later each time.
    if (es.readyState === EventSource.CLOSED) reconnect();
  });
}

function reconnect() {
  source?.close();
  source = undefined;
  const wait = retryMs;
  retryMs = Math.min(retryMs * 2, 30_000);
  setTimeout(() => {
    if (!source) subscribe();
  }, wait);
}

/**
 * @param {number} lat
 * @param {number} lon
 * @param {string} how
 */
function setLocation(lat, lon, how) {
  const fine = latLngToCell(lat, lon, config.resolution);
  mine = new Map();
  for (let r = config.coarsestResolution; r <= config.resolution; r++) mine.set(r, r === config.resolution ? fine : cellToParent(fine, r));
  place.hidden = false;
  // Rounded on screen (about 1 km): enough to check the point is right.
  setText(place, `Showing alerts for ${how} (near ${lat.toFixed(2)}, ${lon.toFixed(2)}).`);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ lat, lon }));
  } catch {
    // Private browsing: the page still works, it just forgets the place.
  }
  alerts = new Map();
  lastEventId = '';
  render();
  subscribe();
}

function parseCoordinate(/** @type {FormDataEntryValue | null} */ v, /** @type {number} */ max) {
  const n = Number(String(v ?? '').trim().replace(',', '.'));
  return Number.isFinite(n) && Math.abs(n) <= max ? n : undefined;
}

async function main() {
  const r = await fetch(`${API}/config`);
  config = /** @type {PublicConfigView} */ (await r.json());
  byId('locate').addEventListener('click', () => {
    locateError.hidden = true;
    if (!navigator.geolocation) {
      locateError.hidden = false;
      setText(locateError, 'This browser cannot tell your location: enter a point instead.');
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => setLocation(pos.coords.latitude, pos.coords.longitude, 'your location'),
      (err) => {
        locateError.hidden = false;
        setText(locateError, `Your location is not available (${err.message || 'permission denied'}): enter a point instead.`);
      },
      { enableHighAccuracy: false, maximumAge: 300_000, timeout: 20_000 },
    );
  });
  const form = /** @type {HTMLFormElement} */ (byId('manual'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const lat = parseCoordinate(data.get('lat'), 90);
    const lon = parseCoordinate(data.get('lon'), 180);
    if (lat === undefined || lon === undefined) {
      locateError.hidden = false;
      setText(locateError, 'Give a latitude (-90 to 90) and a longitude (-180 to 180) in degrees, e.g. 52.52 and 13.40.');
      return;
    }
    locateError.hidden = true;
    setLocation(lat, lon, 'the point you entered');
  });
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    if (saved && typeof saved.lat === 'number' && typeof saved.lon === 'number') setLocation(saved.lat, saved.lon, 'the place you gave last time');
  } catch {
    // Nothing saved, or not readable: wait for the resident.
  }
}

main().catch((err) => connection.set('lost', `(${err instanceof Error ? err.message : String(err)})`));
