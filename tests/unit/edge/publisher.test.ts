import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../../broker/contract/index.js';
import { systemClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import { TelemetryOutbox } from '../../../edge/outbox/telemetry-outbox.js';
import { Publisher } from '../../../edge/publisher.js';
import { waitUntil } from '../../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-publisher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

// Never connected: these tests are about what reaches the outbox file, not the hub.
function publisher(path: string, metrics = new Metrics(), maxTelemetryReadings = 10_000): Publisher {
  const p = new Publisher({
    brokerUrl: 'mqtt://127.0.0.1:1',
    site: 'site-a',
    gateway: 'gw-1',
    batch: { maxReadings: 100, maxDelayMs: 60_000 },
    outbox: { path, eventsPath: `${path}-alarms`, maxTelemetryReadings, maxInFlight: 4, fsyncEvents: false },
    logger: silentLogger,
    clock: systemClock,
    metrics,
  });
  p.open();
  return p;
}

const readings = (n: number): Reading[] => Array.from({ length: n }, (_, i) => ({ device: 'th-1', metric: 'temperature', value: i, unit: 'Cel', time: 1_000_000 + i, quality: 'good', profile: 'p' }));

/** A full disk, as SQLite meets it: the outbox's file may not grow by a page. */
function fillDisk(p: Publisher): { pragma(s: string, o?: { simple: boolean }): unknown } {
  const db = (p as unknown as { telemetry: { db: { pragma(s: string, o?: { simple: boolean }): unknown } } }).telemetry.db;
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  return db;
}

/** What the next run finds in the file (the outbox holds it exclusively while open). */
function onDisk(path: string): number {
  const box = new TelemetryOutbox({ path, site: 'site-a', gateway: 'gw-1', boot: 'other', maxTelemetryReadings: 10_000, batchMaxReadings: 100 });
  box.open(0);
  const n = box.stats().readings;
  box.close();
  return n;
}

describe('gateway publisher, readings', () => {
  it('writes the readings of one turn of the event loop together, and says when they are on disk', async () => {
    const path = join(dir, `p${++files}.db`);
    const p = publisher(path);
    p.addReadings(readings(1));
    p.addReadings(readings(2));
    // Accepted (counted in the outbox's figures) before the transaction, which comes at the end of the turn.
    expect(p.stats().readings).toBe(3);
    let settled = false;
    const stored = p.readingsStored().finally(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    expect(await stored).toBe(true);
    // Nothing waiting: answered at once.
    expect(await p.readingsStored()).toBe(true);
    await p.stop();
    expect(onDisk(path)).toBe(3);
  });

  it('writes the readings handed over before stop, although their turn had not ended', async () => {
    const path = join(dir, `p${++files}.db`);
    const p = publisher(path);
    p.addReadings(readings(5));
    await p.stop();
    expect(onDisk(path)).toBe(5);
  });

  it('keeps readings the outbox refuses (a full disk) and stores them, with those that came meanwhile, once it takes them again', async () => {
    const path = join(dir, `p${++files}.db`);
    const metrics = new Metrics();
    const p = publisher(path, metrics);
    const db = fillDisk(p);
    p.addReadings(readings(300));
    const stored = p.readingsStored();
    await waitUntil('the outbox to refuse them', () => metrics.get('cosafe_edge_outbox_errors_total', { kind: 'readings' }) === 300, 5000, 10);
    p.addReadings(readings(200));
    expect(p.stats().readings).toBe(500);
    // The same wait for both: whoever acknowledges a device waits until all of them are stored.
    expect(p.readingsStored()).toBe(stored);
    db.pragma('max_page_count = 1073741823');
    expect(await stored).toBe(true);
    // Each reading counted once as refused, however many tries it took.
    expect(metrics.get('cosafe_edge_outbox_errors_total', { kind: 'readings' })).toBeLessThanOrEqual(500);
    expect(metrics.get('cosafe_edge_outbox_dropped_total', {})).toBe(0);
    await p.stop();
    expect(onDisk(path)).toBe(500);
  });

  // 1,500 readings handed over while the outbox refuses them: in one input then 14 more, or in ten inputs of one
  // turn then five more (those ten were once kept as one merged array, which the bound could only drop whole).
  it.each([
    { refused: 1, after: 14, how: 'one input at a time' },
    { refused: 10, after: 5, how: 'many inputs in one turn' },
  ])('keeps no more readings in memory than the outbox would hold while it refuses them ($how): the oldest go, counted', async ({ refused, after }) => {
    const path = join(dir, `p${++files}.db`);
    const metrics = new Metrics();
    const p = publisher(path, metrics, 1000);
    const db = fillDisk(p);
    for (let i = 0; i < refused; i++) p.addReadings(readings(100));
    await waitUntil('the outbox to refuse them', () => metrics.get('cosafe_edge_outbox_errors_total', { kind: 'readings' }) > 0, 5000, 10);
    for (let i = 0; i < after; i++) p.addReadings(readings(100));
    expect(p.stats().readings).toBe(1000);
    expect(metrics.get('cosafe_edge_outbox_dropped_total', {})).toBe(500);
    db.pragma('max_page_count = 1073741823');
    expect(await p.readingsStored()).toBe(true);
    await p.stop();
    expect(onDisk(path)).toBe(1000);
  });
});
