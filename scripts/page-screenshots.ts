/**
 * The README's screenshots of the owner's page and the fire department's
 * console (docs/owner-page.png, docs/fire-department-console.png), made the
 * way the browser test sees them: the hub with a real gateway that reads a fire
 * panel over a socat pseudo-terminal and two MQTT sensors, Debian's chromium.
 *
 *   npm run screenshots        (needs socat and chromium: npm run test:setup)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChromium } from '../tests/helpers/chromium.js';
import { signIn, startRolePagesHub } from '../tests/helpers/role-pages-hub.js';
import { stamp } from '../tests/simulators/fire-panel.js';

const DOCS = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');

async function main(): Promise<void> {
  const hub = await startRolePagesHub();
  const chromium = await startChromium();
  try {
    // Reduced motion: the console's unacknowledged banner does not blink, so the picture does not depend on the moment.
    const owner = await (await chromium.context({ viewport: { width: 1000, height: 900 }, reducedMotion: 'reduce' })).newPage();
    const dispatcher = await (await chromium.context({ viewport: { width: 1280, height: 900 }, reducedMotion: 'reduce' })).newPage();
    await signIn(owner, hub.api, hub.logins.owner, '/web/owner/');
    await signIn(dispatcher, hub.api, hub.logins.dispatcher, '/web/console/');
    await owner.locator('.summary[data-state="ok"]').waitFor({ timeout: 60_000 });
    await dispatcher.locator('#connection[data-state="live"]').waitFor();

    await hub.panel.line(`${stamp()} FIRE ALARM      ZONE 02 SMOKE DET. KITCHEN`);
    const card = dispatcher.locator('li.alarm[data-class="fire"]');
    await card.locator('.timeline li[data-kind="delivered"]').waitFor({ timeout: 60_000 });
    await dispatcher.screenshot({ path: join(DOCS, 'fire-department-console.png'), fullPage: true });

    await dispatcher.getByLabel(/Your name/).fill('Weber');
    await card.locator('button[data-action="ack"]').click();
    await card.locator('.timeline li[data-kind="acknowledged"]').waitFor();
    await owner.locator('li.device[data-device="fire-panel"] .acked').waitFor({ timeout: 60_000 });
    // The chart of the storage temperature, drawn by uPlot from the hub.
    await owner.locator('select[name="series"]').selectOption('temp-storage/temperature');
    await owner.locator('.chart canvas').waitFor();
    await owner.locator('li.device[data-device="fire-panel"] details summary').click();
    await owner.screenshot({ path: join(DOCS, 'owner-page.png'), fullPage: true });
    console.log(`wrote ${join(DOCS, 'owner-page.png')} and ${join(DOCS, 'fire-department-console.png')}`);
  } finally {
    await chromium.close();
    await hub.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
