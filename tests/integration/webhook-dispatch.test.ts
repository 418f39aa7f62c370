import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../broker/contract/index.js';
import { DeliveryLog, type PendingDelivery, type WebhookData } from '../../cloud-sync/dispatch/delivery-log.js';
import { WebhookDispatcher } from '../../cloud-sync/dispatch/webhook-dispatcher.js';
import { systemClock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { waitUntil } from '../helpers/processes.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
const event: AlarmEvent = {
  v: 1,
  eventId: 'evt_00000000000000000000000000000001',
  gateway: 'gw-1',
  site: 'site-a',
  device: 'smoke-1',
  profile: 'mqtt-smoke-detector',
  condition: 'smoke',
  class: 'fire',
  state: 'active',
  metric: 'smoke',
  value: 1,
  unit: 'bool',
  time: Date.now(),
};

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const targets = (url: string) => new Map([['fd-1', { department: 'fd-1', url, secret }]]);
/** A delivery of one event to fd-1, keyed as the alarm lifecycle keys an alert. */
const delivery = (e: AlarmEvent): PendingDelivery<WebhookData> => ({ key: `fd-1/${e.eventId}`, channel: 'webhook', department: 'fd-1', message: e });

function dispatcherFor(url: string, metrics = new Metrics(), logger: Logger = silentLogger) {
  const d = new WebhookDispatcher({ targets: targets(url), logger, metrics, clock: systemClock });
  cleanup.push(() => d.stop());
  return d;
}

describe('fire-department webhooks (real HTTP)', () => {
  it('delivers a signed alarm the department can verify', async () => {
    const fd = await new FireDepartmentReceiver({ secret }).start();
    cleanup.push(() => fd.stop());
    dispatcherFor(fd.url).send(delivery(event));
    const got = await fd.waitFor((a) => a.body.data.eventId === event.eventId, 5000);
    expect(got.headers['webhook-id']).toBe(event.eventId);
    expect(got.body).toEqual({ type: 'alarm.fire.active', timestamp: new Date(event.time).toISOString(), data: event });
  });

  it('retries a failed delivery within seconds until the department accepts it', async () => {
    const fd = await new FireDepartmentReceiver({ secret, failFirst: 3 }).start();
    cleanup.push(() => fd.stop());
    const metrics = new Metrics();
    const lines: { code?: string; retryInMs?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { code?: string }) });
    dispatcherFor(fd.url, metrics, logger).send(delivery(event));
    await fd.waitFor((a) => a.body.data.eventId === event.eventId, 10_000);
    // Within seconds: the waits the dispatcher chose after each failure, as its log says them.
    expect(lines.filter((l) => l.code === 'COSAFE_ERR_WEBHOOK_DELIVERY').map((l) => l.retryInMs)).toEqual([250, 500, 1000]);
    expect(fd.failed).toBe(3);
    expect(metrics.total('cosafe_dispatch_failures_total')).toBe(3);
    await waitUntil('the delivery to be counted', () => metrics.total('cosafe_dispatch_delivered_total') === 1);
  });

  it('does not take a redirect for a delivery: the alarm is not followed to a GET elsewhere, and is sent again', async () => {
    // A department whose endpoint moved: a 302 to a page that answers 200 to anything. Following it would turn
    // the POST into a GET that carries no alarm, and count the alarm as delivered.
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      if (req.url === '/hook') res.writeHead(302, { location: '/moved' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const metrics = new Metrics();
    const lines: { code?: string; err?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { code?: string }) });
    dispatcherFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, metrics, logger).send(delivery(event));
    await waitUntil('two attempts', () => metrics.total('cosafe_dispatch_failures_total') >= 2, 10_000);
    expect(metrics.total('cosafe_dispatch_delivered_total')).toBe(0);
    expect(seen.every((r) => r === 'POST /hook')).toBe(true);
    expect(lines.find((l) => l.code === 'COSAFE_ERR_WEBHOOK_DELIVERY')?.err).toBe('HTTP 302');
  });

  it('keeps retrying while the department is unreachable, and delivers when it comes up', async () => {
    const probe = await new FireDepartmentReceiver({ secret }).start();
    const url = probe.url;
    const port = Number(new URL(url).port);
    await probe.stop();
    const metrics = new Metrics();
    dispatcherFor(url, metrics).send(delivery(event));
    await waitUntil('two failed attempts', () => metrics.total('cosafe_dispatch_failures_total') >= 2, 10_000);
    const fd = await new FireDepartmentReceiver({ secret, port }).start();
    cleanup.push(() => fd.stop());
    await fd.waitFor((a) => a.body.data.eventId === event.eventId, 10_000);
  });

  it('sends a resent event only once', async () => {
    const fd = await new FireDepartmentReceiver({ secret }).start();
    cleanup.push(() => fd.stop());
    const metrics = new Metrics();
    const d = dispatcherFor(fd.url, metrics);
    d.send(delivery(event));
    d.send(delivery(event));
    // One delivery under way, not two.
    expect(d.pendingCount()).toBe(1);
    await fd.waitFor((a) => a.body.data.eventId === event.eventId);
    // Nothing left in flight: whatever was sent has arrived.
    await waitUntil('no delivery in flight', () => d.pendingCount() === 0);
    expect(fd.alarms.map((a) => a.body.data.eventId)).toEqual([event.eventId]);
    expect(metrics.total('cosafe_dispatch_duplicates_total')).toBe(1);
  });

  it('takes up a delivery a restart interrupted, and does not send a delivered alarm again when it is redelivered', async () => {
    const probe = await new FireDepartmentReceiver({ secret }).start();
    const url = probe.url;
    const port = Number(new URL(url).port);
    await probe.stop();
    const path = join(mkdtempSync(join(tmpdir(), 'cosafe-dispatch-')), 'dispatch.db');
    
    // The department is down; cloud-sync stops (or crashes) with the delivery pending.
    let log = new DeliveryLog(path);
    log.open();
    let d = new WebhookDispatcher({ targets: targets(url), logger: silentLogger, metrics: new Metrics(), clock: systemClock, log });
    d.send(delivery(event));
    await d.stop();
    log.close();

    const fd = await new FireDepartmentReceiver({ secret, port }).start();
    cleanup.push(() => fd.stop());
    log = new DeliveryLog(path);
    log.open();
    const metrics = new Metrics();
    d = new WebhookDispatcher({ targets: targets(url), logger: silentLogger, metrics, clock: systemClock, log });
    cleanup.push(async () => {
      await d.stop();
      log.close();
    });
    d.resume();
    await fd.waitFor((a) => a.body.data.eventId === event.eventId, 10_000);
    await waitUntil('the delivery to be recorded', () => metrics.total('cosafe_dispatch_delivered_total') === 1);
    // The broker redelivers the same event (its acknowledgement was lost in the crash).
    d.send(delivery(event));
    // Recognised at once: no delivery is started for it.
    expect(d.pendingCount()).toBe(0);
    expect(fd.alarms).toHaveLength(1);
    expect(metrics.total('cosafe_dispatch_duplicates_total')).toBe(1);
  });
});
