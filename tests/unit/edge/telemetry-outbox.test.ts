import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDurableDatabase } from '../../../core/sqlite.js';
import { ReadingBatch, decodeMessage, type Reading } from '../../../broker/contract/index.js';
import { TelemetryOutbox, type BatchMessage, type TelemetryOutboxOptions } from '../../../edge/outbox/telemetry-outbox.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-outbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function outbox(o: Partial<TelemetryOutboxOptions> = {}): TelemetryOutbox {
  const box = new TelemetryOutbox({ path: join(dir, `o${++files}.db`), site: 'site-a', gateway: 'gw-1', boot: 'boot-1', maxTelemetryReadings: 1000, batchMaxReadings: 10, ...o });
  box.open(0);
  return box;
}

const readings = (from: number, n: number): Reading[] =>
  Array.from({ length: n }, (_, i) => ({ device: 'temp-1', metric: 'temperature', value: (from + i) % 100, unit: 'Cel', time: 1_000_000 + from + i, quality: 'good', profile: 'p' }));

function batchOf(m: BatchMessage | undefined): ReadingBatch {
  if (!m) throw new Error('expected a batch, got nothing');
  const r = decodeMessage(ReadingBatch, m.payload);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

/** Takes everything there is to send, acknowledging each. */
function drain(box: TelemetryOutbox): BatchMessage[] {
  const out: BatchMessage[] = [];
  for (let m = box.take(); m; m = box.take()) {
    out.push(m);
    box.ack(m);
  }
  return out;
}

describe('gateway outbox, telemetry lane', () => {
  it('seals readings into contract batches with boot and seq, and keeps them until acknowledged', () => {
    const box = outbox();
    expect(box.addReadings(readings(0, 25), 100)).toBe(0);
    expect(box.stats()).toMatchObject({ readings: 25, openReadings: 5 });
    box.sealOpen(200);
    const first = box.take();
    const b1 = batchOf(first);
    expect(b1).toMatchObject({ gateway: 'gw-1', site: 'site-a', boot: 'boot-1', seq: 1 });
    expect(b1.readings.map((r) => r.time - 1_000_000)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const second = box.take();
    expect(box.stats()).toMatchObject({ readings: 25, inFlight: 2 });
    // Sending the second failed: it goes back, and is the next one out again.
    box.release(second!);
    expect(batchOf(box.take()).seq).toBe(2);
    box.ack(first!);
    expect(box.stats().readings).toBe(15);
    expect(drain(box).map((m) => batchOf(m).seq)).toEqual([3]);
    box.ack(second!);
    expect(box.stats()).toMatchObject({ readings: 0, inFlight: 0 });
    box.close();
  });

  it('replays a backlog oldest first, alternating with live batches so live data is not starved', () => {
    const box = outbox();
    box.addReadings(readings(0, 50), 0); // backlog: seq 1-5
    box.markBacklog(); // the hub is back
    box.addReadings(readings(1000, 30), 0); // live: seq 6-8
    expect(drain(box).map((m) => batchOf(m).seq)).toEqual([1, 6, 2, 7, 3, 8, 4, 5]);
    box.close();
  });

  it('drops the oldest telemetry past its limit, never what is in flight, and says how much', () => {
    const box = outbox({ maxTelemetryReadings: 100 });
    box.addReadings(readings(0, 100), 0);
    const inFlight = box.take(); // seq 1, in flight
    expect(box.addReadings(readings(100, 15), 0)).toBe(20); // seq 2 and 3 go (whole batches)
    expect(box.stats()).toMatchObject({ readings: 95 });
    box.ack(inFlight!);
    box.sealOpen(0);
    const sent = drain(box).map((m) => batchOf(m));
    expect(sent[0]!.readings[0]!.time - 1_000_000).toBe(30);
    expect(sent.flatMap((b) => b.readings).map((r) => r.time - 1_000_000).at(-1)).toBe(114);
    box.close();
  });

  it('survives a restart: old batches keep their boot and seq, open readings are sealed in the new boot, nothing is lost', () => {
    const path = join(dir, 'restart.db');
    const a = new TelemetryOutbox({ path, site: 'site-a', gateway: 'gw-1', boot: 'boot-1', maxTelemetryReadings: 1000, batchMaxReadings: 10 });
    a.open(0);
    a.addReadings(readings(0, 23), 0);
    a.take(); // in flight, never acknowledged
    a.close(); // as after a crash, only the file remains

    const b = new TelemetryOutbox({ path, site: 'site-a', gateway: 'gw-1', boot: 'boot-2', maxTelemetryReadings: 1000, batchMaxReadings: 10 });
    b.open(10_000);
    expect(b.stats()).toMatchObject({ readings: 23, openReadings: 3 });
    b.sealOpen(10_000);
    const sent = drain(b);
    // The two old batches are the backlog; the new one is live and goes between them.
    expect(sent.map((m) => batchOf(m)).map((x) => [x.boot, x.seq, x.readings.length])).toEqual([
      ['boot-1', 1, 10],
      ['boot-2', 1, 3],
      ['boot-1', 2, 10],
    ]);
    b.close();
  });

  it('never reuses an id after it emptied, so nothing sealed later is skipped', () => {
    const box = outbox();
    box.addReadings(readings(0, 10), 0);
    expect(drain(box)).toHaveLength(1);
    box.addReadings(readings(10, 10), 0);
    expect(drain(box).map((m) => batchOf(m).seq)).toEqual([2]);
    box.close();
  });

  it("hands over the events an earlier version kept in the same file, oldest first, for the alarm lane to send", () => {
    const path = join(dir, 'legacy.db');
    const old = openDurableDatabase(path);
    old.exec('CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)');
    old.prepare('INSERT INTO event (body) VALUES (?), (?)').run('{"n":1}', '{"n":2}');
    old.close();
    const box = new TelemetryOutbox({ path, site: 'site-a', gateway: 'gw-1', boot: 'boot-1', maxTelemetryReadings: 1000, batchMaxReadings: 10 });
    box.open(0);
    expect(box.legacyEvents()).toEqual(['{"n":1}', '{"n":2}']);
    box.dropLegacyEvents();
    expect(box.legacyEvents()).toEqual([]);
    box.close();
  });
});
