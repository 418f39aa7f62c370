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
