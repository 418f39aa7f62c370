import { chromium, type Browser, type BrowserContext, type BrowserContextOptions } from 'playwright-core';
import { requireBinary } from './processes.js';

/**
 * Debian's chromium, driven by playwright-core: headless, no network of its
 * own (no component updates, sync or background requests), a fresh profile
 * per run (playwright gives each launch a new --user-data-dir of its own and
 * removes it on close; it refuses one passed in). A missing chromium fails
 * the test and names the package.
 */
export async function startChromium(): Promise<{ browser: Browser; context(o?: BrowserContextOptions): Promise<BrowserContext>; close(): Promise<void> }> {
  const executablePath = requireBinary('chromium', 'chromium');
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    context: (o = {}) => browser.newContext(o),
    async close() {
      await browser.close();
    },
  };
}
