import { cellToParent, gridDisk, latLngToCell } from 'h3-js';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alarmEvent } from '../helpers/alarm-events.js';
import { startChromium } from '../helpers/chromium.js';
import { startFireHub, type FireHub } from '../helpers/fire-hub.js';
import { leaks, privateStrings } from '../helpers/privacy-scan.js';

/**
 * The residents' page in a real browser (Debian's chromium): one resident
 * next to the bakery, by the browser's geolocation; one a few kilometres
 * away, in the same coarse cell (so the same stream reaches both pages), by
 * a point entered by hand. Both on a phone's screen.
 */
const sites = [
  { id: 'bakery-12', name: 'Bakery Müller', address: 'Hauptstr. 12, 10115 Berlin', location: { lat: 52.5301, lon: 13.3849 }, district: 'north', hazards: ['LPG tank in the yard'], contacts: [{ name: 'Anna Müller', phone: '+49 30 1234567' }] },
  { id: 'cafe-14', name: 'Café Sonne', address: 'Hauptstr. 14, 10115 Berlin', location: { lat: 52.5305, lon: 13.3858 }, district: 'north' },
  { id: 'print-9', name: 'Druckerei Weiss', address: 'Hauptstr. 9, 10115 Berlin', location: { lat: 52.5296, lon: 13.3841 }, district: 'north' },
];
const near = { latitude: 52.5303, longitude: 13.3852 };
const elsewhere = { lat: 52.51, lon: 13.36 };
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let hub: FireHub;
let chromium: Awaited<ReturnType<typeof startChromium>>;
let gateway: { username: string; password: string };
let nearby: Page;
let away: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  hub = await startFireHub({ sites, cloudSync: { fireDepartments: [{ id: 'fd-north', district: 'north', channels: [{ type: 'mqtt' }] }], public: { policy: { districts: { north: { default: 'auto' } } } } } });
  gateway = await hub.credential({ role: 'gateway', id: 'bakery-12.gw-1', site: 'bakery-12', gateway: 'gw-1' });
  chromium = await startChromium();
  const a = await chromium.context({ ...phone, geolocation: near, permissions: ['geolocation'] });
  const b = await chromium.context({ ...phone });
  nearby = await a.newPage();
  away = await b.newPage();
  for (const p of [nearby, away]) {
    p.on('pageerror', (e) => pageErrors.push(e.message));
    p.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  }
});

afterAll(async () => {
  await chromium?.close();
  await hub?.close();
});

describe("the residents' page (chromium)", () => {
  it('subscribes by the browser\'s position or a point entered by hand, and says it is live', async () => {
    // Preconditions of the geometry: the same coarse cell, not the same neighbourhood.
    const fineNear = latLngToCell(near.latitude, near.longitude, 8);
    const fineAway = latLngToCell(elsewhere.lat, elsewhere.lon, 8);
    expect(cellToParent(fineNear, 5)).toBe(cellToParent(fineAway, 5));
    expect(gridDisk(fineNear, 1)).not.toContain(fineAway);

    await nearby.goto(`${hub.api}/residents`);
    await nearby.getByRole('button', { name: 'Use my location' }).click();
    await away.goto(`${hub.api}/web/residents/`);
    await away.getByLabel('Latitude').fill(String(elsewhere.lat));
    await away.getByLabel('Longitude').fill(String(elsewhere.lon));
    await away.getByRole('button', { name: 'Show alerts here' }).click();
    for (const p of [nearby, away]) {
      await p.locator('#connection[data-state="live"]').waitFor();
      await expect.poll(() => p.locator('#connection').textContent()).toMatch(/^Live/);
      await expect.poll(() => p.locator('#none').textContent()).toBe('No alerts for your neighbourhood.');
      // It fits a phone's screen: nothing wider than the viewport.
      expect(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    }
  });

  it('shows an alarm raised in the hub to the resident of that neighbourhood, live, and not to the resident elsewhere', async () => {
    const fire = alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', location: 'oven room' });
    await hub.publishEvent(gateway, fire);
    const card = nearby.locator('li.alert[data-state="active"]');
    await card.waitFor();
    expect(await card.locator('.alert__state').textContent()).toBe('Active');
    expect(await card.locator('h3').textContent()).toBe('Fire in your neighbourhood');
    expect(await card.locator('.alert__instruction').textContent()).toMatch(/Keep windows and doors closed/);
    // The page away heard the same message (its last event id moved on) and did not show it.
    const heard = await nearby.locator('#alerts').getAttribute('data-last-event-id');
    await away.locator(`#alerts[data-last-event-id="${heard}"]`).waitFor({ state: 'attached' });
    expect(await away.locator('li.alert').count()).toBe(0);
    expect(await away.locator('#none').isVisible()).toBe(true);
    // What the page shows holds nothing private.
    const shown = await nearby.locator('body').innerText();
    expect(leaks(shown, privateStrings(sites, ['smoke-oven', 'oven room', fire.eventId]), 8)).toEqual([]);
  });

  it('shows the alert as over when the alarm returns to normal', async () => {
    await hub.publishEvent(gateway, alarmEvent({ site: 'bakery-12', gateway: 'gw-1', device: 'smoke-oven', location: 'oven room', state: 'cleared' }));
    const over = nearby.locator('li.alert[data-state="ended"]');
    await over.waitFor();
    expect(await over.locator('.alert__state').textContent()).toBe('Over');
    expect(await nearby.locator('li.alert[data-state="active"]').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('says plainly when it has lost its connection', async () => {
    await hub.close();
    await nearby.locator('#connection[data-state="lost"]').waitFor({ timeout: 20_000 });
    expect(await nearby.locator('#connection').textContent()).toMatch(/Connection lost/);
  });
});
