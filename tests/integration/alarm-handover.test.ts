import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmCopy } from '../../cloud-sync/alarms/alarm-copy.js';
import { AlarmLifecycle } from '../../cloud-sync/alarms/alarm-lifecycle.js';
import { AlarmStore, alarmIdOf } from '../../cloud-sync/alarms/alarm-store.js';
import { DeliveryLog, type PendingDelivery } from '../../cloud-sync/dispatch/delivery-log.js';
import { Departments } from '../../cloud-sync/dispatch/departments.js';
import { AlarmHandover, copiesKey } from '../../cloud-sync/partitions/alarm-handover.js';
import { partitionOf } from '../../cloud-sync/partitions/partition.js';
import { PartitionOwnership } from '../../cloud-sync/partitions/partition-ownership.js';
import type { Site } from '../../cloud-sync/registry/site.js';
import { buildConfig, type ConfigInput } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { openDurableDatabase } from '../../core/sqlite.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { ManualTime } from '../helpers/manual-time.js';
import { waitUntil } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * The shared alarm state of cloud-sync workers (cloud-sync/partitions/alarm-handover.ts)
 * on a real redis-server: two workers, each with its own dispatch database,
 * lifecycle and handover, one clock the test moves. The leases are set in
 * Redis by the test (what partition-leases.ts does is tested on its own), so
 * each step says exactly who holds the partition.
 */
const COUNT = 4;
const SITE = 'bakery-12';
const K = partitionOf(SITE, COUNT);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwHO0v5u0v5u0=';
const sites: Record<string, Site> = {
  [SITE]: { id: SITE, name: 'Bakery', address: 'Main St 1', location: { lat: 52.5, lon: 13.4 }, district: 'north', hazards: [], contacts: [] },
};
const cloudSync: ConfigInput['cloudSync'] = {
  fireDepartments: [
    { id: 'fd-north', district: 'north', url: 'http://127.0.0.1:9/a', secret: SECRET },
    { id: 'fd-backup', district: 'north', primary: false, url: 'http://127.0.0.1:9/b', secret: SECRET },
  ],
  alarms: { ackTimeoutSeconds: 90, districts: { north: { escalation: [{ notify: ['fd-backup'] }] } } },
};
const fdNorth = { id: 'fd-north-3', role: 'fire-department' as const, district: 'north' };

let redis: RedisServer;
const time = new ManualTime();
const dirs: string[] = [];
const running: { handover: AlarmHandover; close(): void }[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 60_000);
afterEach(async () => {
  for (const w of running.splice(0)) {
    await w.handover.stop();
    w.close();
  }
  await redis.client.flushall();
});
afterAll(async () => {
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function worker(id: string) {
  const dir = mkdtempSync(join(tmpdir(), `cosafe-handover-${id}-`));
  dirs.push(dir);
  const config = buildConfig({ dataDir: dir, cloudSync });
  const db = openDurableDatabase(join(dir, 'dispatch.db'));
  const log = new DeliveryLog('');
  log.attach(db);
  const store = new AlarmStore(db);
  const ownership = new PartitionOwnership(COUNT);
  const metrics = new Metrics();
  const sent: PendingDelivery[] = [];
  const lifecycle = new AlarmLifecycle({
    store,
    log,
    departments: new Departments(config.cloudSync.fireDepartments, config.cloudSync.alarms),
    config: config.cloudSync.alarms,
    sites: (s) => sites[s],
    scheduler: time,
    clock: time,
    logger: silentLogger,
    metrics,
    deliver: (p) => sent.push(p),
    othersHaveAlarms: true,
    holds: (s) => ownership.holds(s),
  });
  lifecycle.start();
  const handover = new AlarmHandover({ redisUrl: redis.url, workerId: id, ownership, lifecycle, store, logger: silentLogger, metrics, clock: time });
  await handover.start();
  const w = {
    id,
    lifecycle,
    handover,
    ownership,
    metrics,
    sent,
    close: () => db.close(),
    delivered(p: PendingDelivery) {
      log.delivered(p.key);
      lifecycle.onDelivered(p, time.now());
    },
    /** What the lease holder does on a claim: the lease in Redis, then the import. */
    async take() {
      await redis.client.set(`cosafe:cloud-sync:lease:${K}`, id);
      await handover.acquire(K);
    },
  };
  running.push(w);
  return w;
}

async function copy(alarmId: string): Promise<AlarmCopy | undefined> {
  const json = await redis.client.hget(copiesKey(K), alarmId);
  return json ? (JSON.parse(json) as AlarmCopy) : undefined;
}

describe('alarm state shared in Redis between cloud-sync workers', () => {
  it('writes a copy after each change; the next holder imports it, sends again what was not delivered, and escalates at the stored due time', async () => {
    const a = await worker('a');
    const b = await worker('b');
    await a.take();
    const event = alarmEvent({ site: SITE });
    const id = alarmIdOf(SITE, event.device, event.condition);
    expect(a.lifecycle.onEvent(event)).toBe(true);
    await waitUntil('the copy in Redis', async () => (await copy(id))?.alarm.state === 'active-unacknowledged', 10_000);
    const first = (await copy(id))!;
    expect(first.worker).toBe('a');
    // The Alert went out but its delivery is not confirmed: the copy lists it.
    expect(first.pending.map((p) => p.key)).toEqual(a.sent.map((p) => p.key));
    expect(first.events).toContain(event.eventId);

    // a dies (no release); its lease lapses and b claims the partition. (a, back, holds nothing.)
    await b.take();
    a.ownership.delete(K);
    const taken = b.lifecycle.get(id)!;
    expect(taken.state).toBe('active-unacknowledged');
    expect(b.lifecycle.journal(id).at(-1)).toMatchObject({ kind: 'taken-over', actor: 'b', detail: { from: 'a' } });
    expect(b.metrics.get('cosafe_sync_alarms_taken_over_total')).toBe(1);
    // The unconfirmed Alert is sent again, under the same key (the same webhook-id).
    expect(b.sent.map((p) => p.key)).toEqual(a.sent.map((p) => p.key));
    // An event resent by the broker is a duplicate to b too.
    expect(b.lifecycle.onEvent(event)).toBe(true);
    expect(b.metrics.get('cosafe_alarm_duplicate_events_total')).toBe(1);

    // The stored due time passes: b escalates to the backup centre; a (holding nothing) does not.
    time.advance(91_000);
    expect(b.sent.filter((p) => p.department === 'fd-backup').map((p) => (p.message as unknown as { msgType: string }).msgType)).toEqual(['Update']);
    expect(a.sent.some((p) => p.department === 'fd-backup')).toBe(false);
    expect(b.lifecycle.get(id)!.escalationStep).toBe(1);
    await waitUntil("b's escalation in Redis", async () => (await copy(id))?.alarm.escalationStep === 1, 10_000);
    expect((await copy(id))!.worker).toBe('b');
    expect((await copy(id))!.version.epoch).toBeGreaterThan(first.version.epoch);

    // The acknowledgement: b holds the alarm and applies it; a, with its stale copy, does not.
    expect(a.lifecycle.acknowledge({ alarmId: id, who: fdNorth, channel: 'http' })).toMatchObject({ ok: false, reason: 'elsewhere' });
    expect(b.lifecycle.acknowledge({ alarmId: id, who: fdNorth, channel: 'http' })).toMatchObject({ ok: true });
    await waitUntil('the acknowledgement in Redis', async () => (await copy(id))?.alarm.state === 'active-acknowledged', 10_000);

    // The return to normal, seen by b (the new holder), sends the Cancel to everyone told.
    b.sent.length = 0;
    expect(b.lifecycle.onEvent(alarmEvent({ site: SITE, state: 'cleared' }))).toBe(true);
    expect(b.sent.map((p) => [p.department, (p.message as unknown as { msgType: string }).msgType])).toEqual([
      ['fd-north', 'Cancel'],
      ['fd-backup', 'Cancel'],
    ]);
  }, 60_000);

  it('never lets a worker that lost the partition overwrite the copy, and gives the newer copy to a worker that takes it back', async () => {
    const a = await worker('a');
    const b = await worker('b');
    await a.take();
    const event = alarmEvent({ site: SITE });
    const id = alarmIdOf(SITE, event.device, event.condition);
    a.lifecycle.onEvent(event);
    await waitUntil('the copy in Redis', async () => (await copy(id)) !== undefined, 10_000);
    await b.take();
    time.advance(91_000);
    await waitUntil("b's escalation in Redis", async () => (await copy(id))?.alarm.escalationStep === 1, 10_000);

    // a was paused, not dead: it still believes it holds the partition and confirms the Alert's delivery.
    a.delivered(a.sent[0]!);
    await waitUntil('a refused by the lease', () => a.metrics.get('cosafe_sync_alarm_state_writes_total', { outcome: 'not-holder' }) >= 1, 10_000);
    expect((await copy(id))!).toMatchObject({ worker: 'b', alarm: { escalationStep: 1 } });

    // a takes the partition back: b's newer copy wins over a's local state.
    await b.handover.release(K);
    await a.handover.release(K);
    await a.take();
    expect(a.lifecycle.get(id)).toMatchObject({ escalationStep: 1, notified: ['fd-north', 'fd-backup'] });
    expect(a.lifecycle.journal(id).filter((j) => j.kind === 'escalated')).toHaveLength(1);
    // And a goes on escalating from there: step 2 at b's stored due time.
    time.advance(91_000);
    expect(a.lifecycle.get(id)!.escalationStep).toBe(2);
    expect(b.lifecycle.get(id)!.escalationStep).toBe(1);
  }, 60_000);

  it('hands an HTTP acknowledgement taken by a worker without the partition to its holder', async () => {
    const a = await worker('a');
    const b = await worker('b');
    await a.take();
    const event = alarmEvent({ site: SITE });
    const id = alarmIdOf(SITE, event.device, event.condition);
    a.lifecycle.onEvent(event);
    await waitUntil('the copy in Redis', async () => (await copy(id)) !== undefined, 10_000);
    // b never saw the alarm: it finds it in Redis and relays the acknowledgement.
    expect(b.lifecycle.acknowledge({ alarmId: id, who: fdNorth, channel: 'http' })).toMatchObject({ ok: false, reason: 'unknown' });
    const found = await b.handover.find(id);
    expect(found?.partition).toBe(K);
    expect(await b.handover.relayAck(found!.partition, { alarmId: id, who: fdNorth, channel: 'http', operator: 'Weber' })).toEqual({ holder: 'a' });
    await waitUntil('the holder applying it', () => a.lifecycle.get(id)?.state === 'active-acknowledged', 10_000);
    expect(a.lifecycle.get(id)!.ack).toMatchObject({ by: 'fd-north-3', operator: 'Weber', channel: 'http' });
  }, 60_000);
});
