import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../../broker/contract/index.js';
import { silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import type { DecodedValue } from '../../../device-profiles/codecs/decoded.js';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import type { EngineSnapshot } from '../../../edge/alarm-engine.js';
import { ConditionState } from '../../../edge/condition-state.js';
import type { DeviceBinding } from '../../../edge/device-binding.js';
import { EventOutbox } from '../../../edge/outbox/event-outbox.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-event-outbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const profiles = loadBuiltinProfiles();
const smoke: DeviceBinding = { device: { id: 'smoke-1', profile: 'mqtt-smoke-detector' }, profile: profiles.get('mqtt-smoke-detector')!, topic: 't' };
const smokeReading = (on: boolean, time: number): DecodedValue => ({ metric: 'smoke', unit: '', value: on ? 1 : 0, time, quality: 'good' });

function open(path = join(dir, `e${++files}.db`), fsyncEvents = true): EventOutbox {
  const box = new EventOutbox({ path, fsyncEvents });
  box.open();
  return box;
}

/** The gateway's way of putting them together: conditions recorded in the outbox, `record` as the publisher does it. */
function conditionsOn(box: EventOutbox, o: { refuse?: () => boolean; legacyStateFile?: string } = {}) {
  return new ConditionState({
    site: 's',
    gateway: 'g',
    outbox: box,
    record: (events, changes) => (o.refuse?.() ? undefined : box.record(events, changes)),
    ...(o.legacyStateFile ? { legacyStateFile: o.legacyStateFile } : {}),
    logger: silentLogger,
    metrics: new Metrics(),
  });
}

describe('gateway outbox, alarm lane', () => {
  it('writes an event and the state of its condition together: after a restart the alarm is known, not raised again', async () => {
    const path = join(dir, 'restart.db');
    const first = open(path);
    const a = conditionsOn(first);
    const raised = a.engine.evaluate(smoke, smokeReading(true, 1000));
    expect(raised).toHaveLength(1);
    expect(a.commit(raised)).toHaveLength(1);
    await first.flushed();
    first.close(); // as after a crash: only the file remains

    const again = open(path);
    const b = conditionsOn(again);
    expect(b.engine.activeConditions()).toEqual(['smoke-1/smoke']);
    // The detector still reports smoke, at a later time: the same alarm, not a new one.
    expect(b.engine.evaluate(smoke, smokeReading(true, 11_000))).toEqual([]);
    // The event itself is still there to send, once.
    const m = again.take();
    expect(JSON.parse(m!.payload)).toMatchObject({ eventId: raised[0]!.eventId, state: 'active' });
    again.ack(m!);
    expect(again.take()).toBeUndefined();
    again.close();
  });

  it('sends events oldest first and keeps them until acknowledged; a failed send goes again in its place', () => {
    const box = open();
    const c = conditionsOn(box);
    for (let i = 0; i < 3; i++) c.commit(c.engine.evaluate(smoke, smokeReading(i % 2 === 0, 1000 * (i + 1))));
    const [e1, e2] = [box.take()!, box.take()!];
    expect(box.stats()).toEqual({ events: 3, inFlight: 2 });
    box.release(e1);
    box.ack(e2);
    expect([box.take(), box.take()].map((m) => JSON.parse(m!.payload).time)).toEqual([1000, 3000]);
    box.close();
  });

  it('when the disk refuses the transaction, the condition is decided again by the next reading instead of being taken as reported', () => {
    const box = open();
    let refuse = true;
    const c = conditionsOn(box, { refuse: () => refuse });
    expect(c.commit(c.engine.evaluate(smoke, smokeReading(true, 1000)))).toBeUndefined();
    expect(c.engine.activeConditions()).toEqual([]);
    refuse = false;
    const again = c.engine.evaluate(smoke, smokeReading(true, 2000));
    expect(again).toMatchObject([{ state: 'active', time: 2000 }]);
    expect(c.commit(again)).toHaveLength(1);
    expect(box.stats().events).toBe(1);
    box.close();
  });

  it("takes over an earlier version's condition state file once, and moves it aside", () => {
    const legacyStateFile = join(dir, 'gateway-g-conditions.json');
    const snapshot: EngineSnapshot = { v: 1, conditions: { 'smoke-1/smoke': { active: true, since: 5000, activations: [5000], class: 'fire' } } };
    writeFileSync(legacyStateFile, JSON.stringify(snapshot));
    const path = join(dir, 'migrated.db');
    const box = open(path);
    const c = conditionsOn(box, { legacyStateFile });
    expect(c.engine.activeConditions()).toEqual(['smoke-1/smoke']);
    expect(existsSync(legacyStateFile)).toBe(false);
    expect(existsSync(`${legacyStateFile}.imported`)).toBe(true);
    // The alarm clears; a state file left behind by a crash during the move is not imported over it.
    expect(c.commit(c.engine.evaluate(smoke, smokeReading(false, 9000)))).toHaveLength(1);
    writeFileSync(legacyStateFile, JSON.stringify(snapshot));
    expect(conditionsOn(box, { legacyStateFile }).engine.activeConditions()).toEqual([]);
    box.close();
  });

  it('a damaged state file of an earlier version does not keep the gateway from starting', () => {
    const legacyStateFile = join(dir, 'damaged-conditions.json');
    writeFileSync(legacyStateFile, '{"v":1,"conditions":');
    const box = open();
    expect(conditionsOn(box, { legacyStateFile }).engine.activeConditions()).toEqual([]);
    box.close();
  });

  it('resolves `flushed` once every event recorded before it is on the disk, and at once when nothing waits', async () => {
    const box = open();
    const c = conditionsOn(box);
    await box.flushed();
    const waits = [];
    for (let i = 0; i < 5; i++) {
      c.commit(c.engine.evaluate(smoke, smokeReading(i % 2 === 0, 1000 * (i + 1))));
      waits.push(box.flushed());
    }
    await Promise.all(waits);
    expect(box.error).toBeUndefined();
    box.close();
  });

  it('accepts an event once the hub acknowledged it, without waiting for a slow disk to flush', async () => {
    const box = open();
    const c = conditionsOn(box);
    const ids = c.commit(c.engine.evaluate(smoke, smokeReading(true, 1000)))!;
    let accepted = false;
    void box.accepted(ids).then(() => (accepted = true));
    const sent = box.take()!;
    box.ack(sent); // the hub's PUBACK, before the flush (on the thread pool) can have called back
    await Promise.resolve();
    expect(accepted).toBe(true);
    box.close();
  });

  const event = (n: number, device: string, condition: string, cls: AlarmEvent['class'], state: AlarmEvent['state'] = 'active'): AlarmEvent => ({
    v: 1,
    eventId: `evt_${String(n).padStart(8, '0')}`,
    gateway: 'g',
    site: 's',
    device,
    profile: 'p',
    condition,
    class: cls,
    state,
    time: 1000 + n,
  });
  const sent = (box: EventOutbox) => {
    const out: string[] = [];
    for (let m = box.take(); m; m = box.take()) {
      const e = JSON.parse(m.payload) as AlarmEvent;
      out.push(`${e.device}/${e.condition}/${e.state}`);
      box.ack(m);
    }
    return out;
  };

  it('sends a fire alarm ahead of a fleet of trouble signals queued before it, and keeps each condition in order (NFPA 72 §10.7)', () => {
    const box = open();
    // A thousand devices went silent at once: their trouble signals wait, 16 of them already in flight.
    for (let i = 0; i < 1000; i++) box.record([event(i, `th-${i}`, 'comm-lost', 'trouble')], []);
    const inFlight = Array.from({ length: 16 }, () => box.take()!);
    box.record([event(2000, 'valve-1', 'tamper', 'supervisory')], []);
    box.record([event(2001, 'smoke-1', 'smoke', 'fire')], []);
    box.record([event(2002, 'smoke-1', 'smoke', 'fire', 'cleared')], []);
    // The next ones out: the fire alarm and its clear, in their order, then the supervisory signal, then the rest of the trouble.
    const next = [box.take()!, box.take()!, box.take()!, box.take()!].map((m) => (JSON.parse(m.payload) as AlarmEvent).condition + '/' + (JSON.parse(m.payload) as AlarmEvent).state);
    expect(next).toEqual(['smoke/active', 'smoke/cleared', 'tamper/active', 'comm-lost/active']);
    expect(box.stats()).toEqual({ events: 1003, inFlight: 20 });
    // A send that failed goes again in its place: before every later trouble signal.
    box.release(inFlight[0]!);
    expect(JSON.parse(box.take()!.payload)).toMatchObject({ device: 'th-0' });
    box.close();
  });

  it('says whether an alarm signal waits for the hub (the link then hurries to reconnect), not for trouble or supervisory ones', () => {
    const box = open();
    box.record([event(1, 'th-1', 'comm-lost', 'trouble'), event(2, 'valve-1', 'tamper', 'supervisory')], []);
    expect(box.alarmPending()).toBe(false);
    box.record([event(3, 'smoke-1', 'smoke', 'fire')], []);
    expect(box.alarmPending()).toBe(true);
    // Still pending while in flight: until the hub's PUBACK it may have to be sent again.
    const alarm = box.take()!;
    expect(box.alarmPending()).toBe(true);
    box.ack(alarm);
    expect(box.alarmPending()).toBe(false);
    box.close();
  });

  it("takes an earlier version's outbox (no priority) as it is: its events are sent, none lost, before any later trouble", () => {
    const path = join(dir, 'old-outbox.db');
    const old = new Database(path);
    old.exec('CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)');
    old.prepare('INSERT INTO event (body) VALUES (?)').run(JSON.stringify(event(1, 'th-1', 'comm-lost', 'trouble')));
    old.prepare('INSERT INTO event (body) VALUES (?)').run(JSON.stringify(event(2, 'smoke-1', 'smoke', 'fire')));
    old.close();
    const box = open(path);
    box.record([event(3, 'th-2', 'comm-lost', 'trouble')], []);
    expect(sent(box)).toEqual(['th-1/comm-lost/active', 'smoke-1/smoke/active', 'th-2/comm-lost/active']);
    box.close();
  });
});
