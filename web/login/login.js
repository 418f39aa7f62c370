// @ts-check
import { byId, setText } from '../shared/dom.js';

const form = /** @type {HTMLFormElement} */ (byId('login'));
const problem = byId('problem');

/** Where to go after signing in: back to the page that sent us here (a path of the pages only), else the role's own page. */
function nextPage(/** @type {string | null} */ home) {
  const next = new URLSearchParams(location.search).get('next');
  if (next && /^\/web\/[A-Za-z0-9/_.-]*$/.test(next) && !next.startsWith('/web/login')) return next;
  return home ?? '/web/';
}

function say(/** @type {string} */ text) {
  problem.hidden = false;
  setText(problem, text);
}

if (new URLSearchParams(location.search).get('why') === 'expired') say('Your session has ended. Sign in again.');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button'));
  button.disabled = true;
  try {
    const res = await fetch('/api/v1/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ username: String(data.get('username') ?? '').trim(), password: String(data.get('password') ?? '') }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      location.assign(nextPage(body.home ?? null));
      return;
    }
    if (res.status === 429) say('Too many failed attempts from here. Wait a minute, then try again.');
    else if (res.status === 403) say(body.error ?? 'This credential has no pages.');
    else say('Unknown username or wrong password.');
  } catch {
    say('The hub cannot be reached. Check the connection and try again.');
  } finally {
    button.disabled = false;
  }
});
