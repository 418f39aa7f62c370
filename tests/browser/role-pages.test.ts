import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChromium } from '../helpers/chromium.js';
import { signIn as signInAt, startRolePagesHub, type RolePagesHub } from '../helpers/role-pages-hub.js';
import { stamp } from '../simulators/fire-panel.js';

/**
 * The building owner's page and the fire department's console in a real
 * browser (Debian's chromium), on a hub with a real gateway reading a fire
 * panel's printer port over a socat pseudo-terminal. The panel's line and the
 * panel's configured location carry markup that would run if a page parsed
 * it as HTML: it must show as text, and run nowhere.
 */
// Both fit in one panel line (the profile's maxLineLength is 120, a longer line is refused as noise).
const SCRIPT = '<script>window.__pwned=1</script>';
const ATTRIBUTE = '<img src=x onerror=window.__pwned=2>';
const HOSTILE_LOCATION = `stair B ${ATTRIBUTE}`;

let hub: RolePagesHub;
const signIn = (page: Page, login: { username: string; password: string }, path: string) => signInAt(page, hub.api, login, path);
let chromium: Awaited<ReturnType<typeof startChromium>>;
let ownerContext: BrowserContext;
let owner: Page;
let dispatcher: Page;
const pageErrors: string[] = [];
const dialogs: string[] = [];

beforeAll(async () => {
  hub = await startRolePagesHub({ panelLocation: HOSTILE_LOCATION });
  chromium = await startChromium();
  ownerContext = await chromium.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const consoleContext = await chromium.context({ viewport: { width: 1280, height: 900 } });
  owner = await ownerContext.newPage();
  dispatcher = await consoleContext.newPage();
  for (const p of [owner, dispatcher]) {
    p.on('pageerror', (e) => pageErrors.push(e.message));
    // The API's refusals (401 before signing in, the 403 asked for below) are answers the pages handle; a page's own file or a vendor module must never fail.
    p.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    p.on('response', (r) => {
      if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/api/v1/')) pageErrors.push(`${r.status()} ${r.url()}`);
    });
    p.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }
});

afterAll(async () => {
  await chromium?.close();
  await hub?.close();
});

describe("the owner's page and the fire department's console (chromium, a real gateway)", () => {
  it('signs the owner in and shows their devices, working, and not another site\'s', async () => {
    await signIn(owner, hub.logins.owner, '/web/owner/');
    const site = owner.locator('section.site[data-site="bakery-12"]');
    await site.waitFor();
    expect(await owner.locator('section.site').count()).toBe(1);
    expect(await site.locator('h2').textContent()).toBe('Bakery Müller');
    // The gateway reports its devices; the MQTT sensors send values every second.
    await expect.poll(() => site.locator('li.device[data-device="smoke-kitchen"]').getAttribute('data-state'), { timeout: 30_000 }).toBe('ok');
    await expect.poll(() => site.locator('li.device[data-device="temp-storage"] .device__line').first().textContent(), { timeout: 30_000 }).toMatch(/temperature \d+(\.\d+)? Cel, \d+ s ago/);
    expect(await site.locator('li.device[data-device="smoke-kitchen"] .device__line').first().textContent()).toMatch(/battery 100 %/);
    expect(await site.locator('li.device[data-device="fire-panel"]').count()).toBe(1);
    expect(await owner.locator('[data-device="depot-sensor"]').count()).toBe(0);
    expect(await owner.locator('body').innerText()).not.toContain('Depot 3');
    // And the API says no to the other site, in this browser, with this session.
    const status = await owner.evaluate(async () => (await fetch('/api/v1/sites/depot-3/devices')).status);
    expect(status).toBe(403);
    await expect.poll(() => site.locator('.summary').getAttribute('data-state'), { timeout: 30_000 }).toBe('ok');
    // A chart of any value over the last hours: uPlot, from the hub, of the readings the sensor sent.
    await site.locator('select[name="series"]').selectOption('temp-storage/temperature');
    await expect.poll(() => site.locator('.chart-summary').textContent(), { timeout: 20_000 }).toMatch(/^\d+ readings of temperature \(Cel\) from temp-storage: lowest /);
    expect(await site.locator('.chart canvas').count()).toBeGreaterThan(0);
  });

  it('shows the dispatcher an alarm from the panel live, with its site, hazards, contacts and timeline; markup in it is text', async () => {
    await signIn(dispatcher, hub.logins.dispatcher, '/web/console/');
    await dispatcher.locator('#connection[data-state="live"]').waitFor();
    expect(await dispatcher.locator('#attention').getAttribute('data-state')).toBe('none');
    const line = `${stamp()} FIRE ALARM      ZONE 02 ${SCRIPT}${ATTRIBUTE}`;
    expect(line.length).toBeLessThanOrEqual(120);
    await hub.panel.line(line);
    const card = dispatcher.locator('li.alarm[data-class="fire"]');
    await card.waitFor({ timeout: 30_000 });
    expect(await card.getAttribute('data-state')).toBe('active-unacknowledged');
    expect(await dispatcher.locator('#attention').getAttribute('data-state')).toBe('unacknowledged');
    expect(await dispatcher.locator('#attention').textContent()).toBe('1 UNACKNOWLEDGED ALARM');
    expect(await dispatcher.title()).toMatch(/^\(1\) UNACKNOWLEDGED ALARM/);
    expect(await card.locator('.alarm__title').textContent()).toBe(`Bakery Müller · fire-panel · ${HOSTILE_LOCATION}`);
    expect(await card.locator('.alarm__text').textContent()).toContain(`ZONE 02 ${SCRIPT}${ATTRIBUTE}`);
    const text = await card.innerText();
    for (const words of ['Hauptstraße 12, 10115 Berlin', 'Position 52.53010, 13.38490', 'LPG tank in the yard', 'Anna Müller (owner) · +49 30 1234567']) expect(text).toContain(words);
    // Its timeline: raised by the gateway, then delivered to the department.
    await expect.poll(() => card.locator('.timeline li').evaluateAll((li) => li.map((x) => x.getAttribute('data-kind'))), { timeout: 20_000 }).toEqual(expect.arrayContaining(['raised', 'delivered']));
  });

  it('acknowledges with one click, and the owner\'s page shows who acknowledged and when', async () => {
    await dispatcher.getByLabel(/Your name/).fill('Weber');
    await dispatcher.locator('li.alarm[data-class="fire"] button[data-action="ack"]').click();
    const card = dispatcher.locator('li.alarm[data-class="fire"]');
    await expect.poll(() => card.getAttribute('data-state')).toBe('active-acknowledged');
    expect(await card.locator('.alarm__state').textContent()).toMatch(/^Acknowledged by fd-north-1 \(Weber\) at /);
    expect(await dispatcher.locator('#attention').getAttribute('data-state')).toBe('acknowledged');
    await expect.poll(() => card.locator('.timeline li[data-kind="acknowledged"]').count()).toBe(1);

    const panel = owner.locator('li.device[data-device="fire-panel"]');
    await expect.poll(() => panel.getAttribute('data-state'), { timeout: 20_000 }).toBe('alarm');
    await expect.poll(() => panel.locator('.acked').first().textContent(), { timeout: 20_000 }).toMatch(/^acknowledged by fd-north-1 \(Weber\) at .+, over http$/);
    expect(await owner.locator('.summary').textContent()).toMatch(/^FIRE ALARM: fire-panel/);
    const row = owner.locator('table.history tbody tr').first();
    expect(await row.innerText()).toMatch(/acknowledged by fd-north-1 \(Weber\)/);
  });

  it('keeps every value from the panel and the config inert on every page: shown as text, never run', async () => {
    for (const page of [owner, dispatcher]) {
      const shown = await page.locator('body').innerText();
      expect(shown).toContain(SCRIPT);
      expect(shown).toContain(ATTRIBUTE);
      // Nothing was parsed into elements: the only scripts are the page's own modules, no <img> at all.
      expect(await page.locator('body script').count()).toBe(0);
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    }
    // And had anything slipped through as markup, the hub's policy would not let it run: scripts from the hub's own files only.
    for (const path of ['/web/owner/', '/web/console/', '/web/login/']) {
      const csp = (await fetch(`${hub.api}${path}`)).headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
    }
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('signs the owner out: the session ends, and the API answers 401 to the old cookie', async () => {
    const cookies = await ownerContext.cookies();
    const session = cookies.find((c) => c.name === 'cosafe_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await owner.getByRole('button', { name: 'Sign out' }).click();
    await owner.waitForURL(/\/web\/login\//);
    const res = await fetch(`${hub.api}/api/v1/session`, { headers: { cookie: `cosafe_session=${session!.value}` } });
    expect(res.status).toBe(401);
  });

  it('says plainly on the console when it is offline', async () => {
    await hub.stack.cloudSync!.stop();
    await dispatcher.locator('#connection[data-state="lost"]').waitFor({ timeout: 40_000 });
    expect(await dispatcher.locator('#connection').textContent()).toMatch(/^OFFLINE/);
  });
});
