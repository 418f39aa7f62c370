import { mkdtempSync, rmSync } from 'node:fs';
import assert from 'node:assert';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlitePersistence } from '../../../broker/sqlite-persistence.js';

/**
 * The conformance suite every Aedes persistence must pass (aedes-persistence's
 * abstract.js, written for node:test), run here against the SQLite persistence.
 */
type AbstractTest = (name: string, fn: (t: unknown) => Promise<void>) => void;
const abstractSuite = createRequire(import.meta.url)('aedes-persistence/abstract.js') as (opts: {
  test: AbstractTest;
  persistence: () => Promise<unknown>;
  testAsync: boolean;
}) => void;

const dir = mkdtempSync(join(tmpdir(), 'cosafe-persistence-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const suite = (persistence: () => SqlitePersistence) =>
  abstractSuite({
    testAsync: true,
    persistence: async () => persistence(),
    test: (name, fn) =>
      it(name, async () => {
        // node:test's TestContext, as far as the suite uses it.
        await fn({ assert, plan: () => {}, diagnostic: () => {} });
      }),
  });

describe('SQLite persistence: aedes-persistence abstract suite', () => {
  suite(() => new SqlitePersistence(join(dir, `p${++n}.db`)));
});

describe('SQLite persistence with a telemetry lane on a worker thread: aedes-persistence abstract suite', () => {
  // Topics of even length go to the telemetry lane, so the suite's messages are spread over both.
  suite(() => new SqlitePersistence(join(dir, `p${++n}.db`), { telemetryPath: join(dir, `t${n}.db`), isTelemetry: (topic) => topic.length % 2 === 0 }));
});

describe('SQLite persistence: what survives a restart', () => {
  const broker = () => ({ id: 'broker-1', counter: 0, mq: {}, publish() {}, subscribe() {}, unsubscribe() {} });

  it('keeps subscriptions, queued messages of both lanes, retained messages, wills and the journal', async () => {
    const path = join(dir, 'restart.db');
    const lanes = { telemetryPath: join(dir, 'restart-telemetry.db'), isTelemetry: (topic: string) => topic.endsWith('/readings') };
    const a = new SqlitePersistence(path, lanes);
    await a.setup(broker());
    const client = { id: 'cloud-sync' };
    await a.addSubscriptions(client, [{ topic: 'site/+/readings', qos: 1 }]);
    const packet = { cmd: 'publish', topic: 'site/a/readings', payload: Buffer.from('batch-1'), qos: 1, retain: false, brokerId: 'broker-1', brokerCounter: 7 };
    await a.outgoingEnqueueCombi(await a.subscriptionsByTopic('site/a/readings'), packet);
    await a.addSubscriptions(client, [{ topic: 'site/+/events', qos: 1 }]);
    await a.outgoingEnqueueCombi(await a.subscriptionsByTopic('site/a/events'), { ...packet, topic: 'site/a/events', payload: Buffer.from('fire-1'), brokerCounter: 8 });
    await a.storeRetained({ cmd: 'publish', topic: 'status/gw', payload: Buffer.from('online'), qos: 1, retain: true });
    await a.putWill({ id: 'gw' }, { cmd: 'publish', topic: 'status/gw', payload: Buffer.from('offline'), qos: 1, retain: true });
    const journaled = [await a.journalAppend({ topic: 'site/a/events', payload: Buffer.from('fire'), qos: 1, retain: false }), await a.journalAppend({ topic: 'site/a/readings', payload: Buffer.from('batch-2'), qos: 1, retain: false })];
    // No destroy(): as after a crash, the file is all there is.

    const b = new SqlitePersistence(path, lanes);
    // The first instance still holds the exclusive lock; a crashed process would not.
    await a.destroy();
    await b.setup({ ...broker(), id: 'broker-2' });
    expect((await b.subscriptionsByClient(client)).map((x) => [x.topic, x.qos]).sort()).toEqual([
      ['site/+/events', 1],
      ['site/+/readings', 1],
    ]);
    expect((await b.subscriptionsByTopic('site/b/readings')).map((s) => s.clientId)).toEqual(['cloud-sync']);
    const queued = await b.outgoingStream(client).toArray();
    // The alarm lane first: an event is never queued behind telemetry.
    expect(queued.map((p: { payload: Buffer }) => p.payload.toString())).toEqual(['fire-1', 'batch-1']);
    expect(await b.queued(client.id)).toBe(2);
    const retained = await b.createRetainedStream('status/#').toArray();
    expect(retained.map((p: { payload: Buffer }) => p.payload.toString())).toEqual(['online']);
    expect((await b.getWill({ id: 'gw' }))?.payload?.toString()).toBe('offline');
    expect(await b.journalEntries()).toEqual([
      { ref: journaled[0], packet: expect.objectContaining({ topic: 'site/a/events', qos: 1 }) },
      { ref: journaled[1], packet: expect.objectContaining({ topic: 'site/a/readings', qos: 1 }) },
    ]);
    expect(journaled.map((r) => r.lane)).toEqual(['alarm', 'telemetry']);
    await b.destroy();
  });
});

describe('SQLite persistence: QoS 1 packet identifiers (kept in memory, not in the file)', () => {
  const broker = () => ({ id: 'broker-1', counter: 0, mq: {}, publish() {}, subscribe() {}, unsubscribe() {} });
  const client = { id: 'gateway' };
  const msg = (counter: number) => ({ cmd: 'publish', topic: 'site/a/up', payload: Buffer.from(`m${counter}`), qos: 1, retain: false, brokerId: 'broker-1', brokerCounter: counter });
  const text = (p: unknown) => (p as { payload?: Buffer } | undefined)?.payload?.toString();
  const stream = async (p: SqlitePersistence) => ((await p.outgoingStream(client).toArray()) as { payload: Buffer; messageId?: number }[]).map((x) => [x.payload.toString(), x.messageId]);

  async function queuedAndSent(p: SqlitePersistence, sends: [counter: number, messageId: number][]) {
    await p.addSubscriptions(client, [{ topic: 'site/+/up', qos: 1 }]);
    for (const [counter] of sends) await p.outgoingEnqueueCombi([{ clientId: client.id }], msg(counter));
    for (const [counter, messageId] of sends) await p.outgoingUpdate(client, { ...msg(counter), messageId });
  }

  it('a PUBACK takes the oldest message sent under its identifier (identifiers wrap at 65,535)', async () => {
    const p = new SqlitePersistence(join(dir, 'ids-wrap.db'));
    await p.setup(broker());
    await queuedAndSent(p, [
      [1, 7],
      [2, 8],
      [3, 7],
    ]);
    expect(text(await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: 7 }))).toBe('m1');
    expect(await stream(p)).toEqual([
      ['m2', 8],
      ['m3', 7],
    ]);
    expect(text(await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: 7 }))).toBe('m3');
    expect(text(await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: 7 }))).toBeUndefined();
    expect(await p.queued(client.id)).toBe(1);
    await p.destroy();
  });

  it('a client that comes back gets its messages in flight again under their identifiers, and one PUBACK each clears them', async () => {
    const p = new SqlitePersistence(join(dir, 'ids-back.db'));
    await p.setup(broker());
    await queuedAndSent(p, [
      [1, 1],
      [2, 2],
    ]);
    await p.outgoingEnqueueCombi([{ clientId: client.id }], msg(3)); // queued while the client was away
    const again = await stream(p);
    expect(again).toEqual([
      ['m1', 1],
      ['m2', 2],
      ['m3', undefined],
    ]);
    // Aedes sends them again: the same identifiers for the first two, a new one for the third.
    await p.outgoingUpdate(client, { ...msg(1), messageId: 1 });
    await p.outgoingUpdate(client, { ...msg(2), messageId: 2 });
    await p.outgoingUpdate(client, { ...msg(3), messageId: 3 });
    for (const id of [1, 2, 3]) expect(text(await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: id }))).toBe(`m${id}`);
    expect(await p.queued(client.id)).toBe(0);
    await p.destroy();
  });

  it('after a restart, the messages in flight are still queued and are sent again under new identifiers', async () => {
    const path = join(dir, 'ids-restart.db');
    const a = new SqlitePersistence(path);
    await a.setup(broker());
    await queuedAndSent(a, [
      [1, 41],
      [2, 42],
    ]);
    await a.destroy();
    const b = new SqlitePersistence(path);
    await b.setup({ ...broker(), id: 'broker-2' });
    // The identifiers were this process's; the messages are the file's.
    expect(await stream(b)).toEqual([
      ['m1', undefined],
      ['m2', undefined],
    ]);
    await b.outgoingUpdate(client, { ...msg(1), messageId: 1 });
    await b.outgoingUpdate(client, { ...msg(2), messageId: 2 });
    expect(text(await b.outgoingClearMessageId(client, { cmd: 'puback', messageId: 41 }))).toBeUndefined();
    expect(text(await b.outgoingClearMessageId(client, { cmd: 'puback', messageId: 2 }))).toBe('m2');
    expect(text(await b.outgoingClearMessageId(client, { cmd: 'puback', messageId: 1 }))).toBe('m1');
    expect(await b.queued(client.id)).toBe(0);
    await b.destroy();
  });
});
