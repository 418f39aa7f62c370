// @ts-check
import { watchdog } from './connection.js';
/**
 * The signed-in pages' (owner, console) one way to talk to the hub's private
 * API: with the session cookie the browser keeps (HttpOnly: this code never
 * sees it), and the session's CSRF token on every change. A request the hub
 * refuses as unauthenticated sends the person to the sign-in page, and back
 * here afterwards.
 */

/**
 * @typedef {{ identity: string, role: string, district?: string, sites?: string[], via: string, home: string | null, may: string[], csrf?: string, expiresAt?: number }} SessionInfo
 */

export const LOGIN_PAGE = '/web/login/';

/** @type {SessionInfo | undefined} */
let current;

/** Sends the browser to the sign-in page, which brings it back to this page. */
export function toLogin(/** @type {string} */ why = '') {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`${LOGIN_PAGE}?next=${next}${why ? `&why=${encodeURIComponent(why)}` : ''}`);
}

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * JSON from the private API; changes carry the CSRF token.
 * @param {string} path
 * @param {{ method?: string, body?: unknown }} [init]
 * @returns {Promise<any>}
 */
export async function api(path, init = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.method && init.method !== 'GET' && current?.csrf) headers['x-csrf-token'] = current.csrf;
  const res = await fetch(path, { method: init.method ?? 'GET', headers, credentials: 'same-origin', ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  if (res.status === 401) {
    toLogin('expired');
    throw new ApiError(401, 'signed out');
  }
  const body = res.status === 204 ? {} : await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, String(body.error ?? body.message ?? `HTTP ${res.status}`));
  return body;
}

/**
 * Who is signed in (and the CSRF token), or off to the sign-in page.
 * @returns {Promise<SessionInfo>}
 */
export async function session() {
  current = /** @type {SessionInfo} */ (await api('/api/v1/session'));
  return current;
}

export async function signOut() {
  try {
    await api('/api/v1/session', { method: 'DELETE' });
  } finally {
    location.assign(LOGIN_PAGE);
  }
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(/** @type {number | null | undefined} */ ms, /** @type {number} */ now = Date.now()) {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** A time of day, with the date when it is not today. */
export function when(/** @type {number} */ ms) {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

/**
 * The hub's live alarm stream (`/api/v1/alarms/stream`, Server-Sent Events) for
 * a signed-in page: the connection indicator says live only while something
 * (a snapshot, an alarm, the hub's heartbeat) arrives within `silentAfterMs`; a
 * silent stream is dropped and opened again; one the hub closed with an error
 * (signed out, restarting) is opened again once the session is known to be
 * there, else the page goes to the sign-in page.
 * @param {{
 *   silentAfterMs: number,
 *   connection: { state: string, set(state: 'connecting' | 'live' | 'lost'): void },
 *   onSnapshot?: (data: any) => void,
 *   onAlarm: (data: any) => void,
 * }} o
 */
export function listenToAlarms(o) {
  const es = new EventSource('/api/v1/alarms/stream');
  const silence = watchdog(o.silentAfterMs, () => {
    o.connection.set('lost');
    es.close();
    setTimeout(() => listenToAlarms(o), 2000);
  });
  const heard = () => {
    silence.touch();
    if (o.connection.state !== 'live') o.connection.set('live');
  };
  const data = (/** @type {Event} */ e) => JSON.parse(/** @type {MessageEvent} */ (e).data);
  o.connection.set('connecting');
  silence.touch();
  es.addEventListener('snapshot', (e) => {
    o.onSnapshot?.(data(e));
    heard();
  });
  es.addEventListener('alarm', (e) => {
    heard();
    o.onAlarm(data(e));
  });
  es.addEventListener('heartbeat', () => heard());
  es.addEventListener('signed-out', () => toLogin('expired'));
  es.addEventListener('error', () => {
    o.connection.set('lost');
    if (es.readyState === EventSource.CLOSED) {
      silence.stop();
      setTimeout(() => void session().then(() => listenToAlarms(o), () => {}), 3000);
    }
  });
}
