import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { persistBeforeAck } from '../../broker/persist-before-ack.js';
import { SqlitePersistence } from '../../broker/sqlite-persistence.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { addCredential, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil } from '../helpers/processes.js';

/**
 * The hub broker keeps what it has acknowledged. Three cases: no PUBACK before
 * the message is queued for the persistent sessions (made visible here by a
 * persistence whose queueing waits until the test lets it go), a journal an
 * earlier version left behind, handed on at start, and a real `cosafe broker`
 * killed with SIGKILL with messages queued for a persistent session.
 */
const dir = mkdtempSync(join(tmpdir(), 'cosafe-broker-'));
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Queues only when the test says so: the moment between "received" and "on disk" held open. */
class HeldQueueing extends SqlitePersistence {
  held: (() => void)[] = [];
  override async outgoingEnqueueCombi(subs: { clientId: string }[], packet: Parameters<SqlitePersistence['outgoingEnqueueCombi']>[1]): Promise<void> {
    if (subs.length > 0) await new Promise<void>((resolve) => this.held.push(resolve));
    await super.outgoingEnqueueCombi(subs, packet);
  }
}

async function broker(persistence: SqlitePersistence, persistFirst: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker({ persistence });
  if (persistFirst) await persistBeforeAck(aedes, persistence, silentLogger, new Metrics());
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      server.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await persistence.destroy().catch(() => {});
    },
  };
}

async function subscriber(url: string, received: string[]): Promise<MqttClient> {
  // The listener goes on before the connection: a queue arrives right behind the CONNACK.
  const c = mqtt.connect(url, { clientId: 'cloud-sync-like', clean: false, reconnectPeriod: 0 });
  c.on('message', (_t, payload) => received.push(payload.toString()));
  await new Promise((resolve) => c.once('connect', resolve));
  return c;
}

/** Publishes while queueing is held; says whether the PUBACK came before the message was queued. */
async function ackedBeforeQueued(path: string, persistFirst: boolean): Promise<boolean> {
  const persistence = new HeldQueueing(path);
  const b = await broker(persistence, persistFirst);
  cleanup.push(() => b.close());
  const sub = await subscriber(b.url, []);
  await sub.subscribeAsync('site/+/events', { qos: 1 });
  await sub.endAsync(true);
  const pub = await mqtt.connectAsync(b.url, { clientId: 'gateway-like', reconnectPeriod: 0 });
  cleanup.push(() => pub.endAsync(true));
  let acked = false;
  const publishing = pub.publishAsync('site/a/events', 'fire alarm', { qos: 1 }).then(() => (acked = true)); // resolves on PUBACK
  await waitUntil('the broker to start queueing the message', () => persistence.held.length === 1);
  // Aedes alone has sent its PUBACK by now (it writes it before it queues); a round trip makes sure it is in.
  await pub.subscribeAsync('unrelated/topic', { qos: 0 });
  const before = acked;
  persistence.held.splice(0).forEach((go) => go());
  await publishing;
  return before;
}

describe('hub broker durability', () => {
  it('no PUBACK before the message is queued for the persistent subscriber', async () => {
    expect(await ackedBeforeQueued(join(dir, 'held.db'), true)).toBe(false);
  });

  it('(control) Aedes alone acknowledges first, so a crash in between would lose the message', async () => {
    expect(await ackedBeforeQueued(join(dir, 'held-control.db'), false)).toBe(true);
  });

  it('a message an earlier version journaled just before a crash reaches the persistent subscriber after the upgrade', async () => {
    const path = join(dir, 'journal.db');
    const first = await broker(new SqlitePersistence(path), true);
    const sub = await subscriber(first.url, []);
    await sub.subscribeAsync('site/+/events', { qos: 1 });
    await sub.endAsync(true);
    await first.close();
    // What that version left: acknowledged, in its journal, never queued.
    const old = new SqlitePersistence(path);
    await old.setup(undefined);
    await old.journalAppend({ cmd: 'publish', topic: 'site/a/events', payload: Buffer.from('fire alarm'), qos: 1, retain: false } as never);
    await old.destroy();

    const second = await broker(new SqlitePersistence(path), true);
    cleanup.push(() => second.close());
    const received: string[] = [];
    const again = await subscriber(second.url, received);
    cleanup.push(() => again.endAsync(true));
    await waitUntil('the journaled message', () => received.includes('fire alarm'));
    expect(received).toEqual(['fire alarm']);
  });

  it('cosafe broker killed with SIGKILL keeps the messages queued for a persistent session', async () => {
    const port = await freePort();
    const config = join(dir, 'broker.yaml');
    writeFileSync(config, stringify({ dataDir: join(dir, 'broker-state'), broker: { host: '127.0.0.1', port } }));
    const url = `mqtt://127.0.0.1:${port}`;
    const service = await addCredential(config, '--role', 'service', '--id', 'cloud-sync');
    const gateway = await addCredential(config, '--role', 'gateway', '--site', 's', '--gateway', 'g');
    let proc = startCosafe(['broker', '--config', config]);
    cleanup.push(() => proc.stop('SIGTERM'));
    const connect = (id: string) => waitUntil(`the broker on ${url}`, async () => (await mqtt.connectAsync(url, { clientId: id, reconnectPeriod: 0, ...service })).endAsync().then(() => true), 20_000, 100);
    await connect('probe');
    const sub = await mqtt.connectAsync(url, { clientId: 'cloud-sync-like', clean: false, reconnectPeriod: 0, ...service });
    await sub.subscribeAsync('cosafe/v1/sites/+/gateways/+/readings', { qos: 1 });
    await sub.endAsync(true);
    const pub = await mqtt.connectAsync(url, { clientId: 'gw', reconnectPeriod: 0, ...gateway });
    for (let i = 0; i < 200; i++) await pub.publishAsync('cosafe/v1/sites/s/gateways/g/readings', `batch ${i}`, { qos: 1 });
    pub.end(true);
    await proc.stop('SIGKILL');
    proc = startCosafe(['broker', '--config', config]);
    await connect('probe');
    const received = new Set<string>();
    // The listener goes on before the connection: the queue arrives right behind the CONNACK.
    const again = mqtt.connect(url, { clientId: 'cloud-sync-like', clean: false, reconnectPeriod: 0, ...service });
    again.on('message', (_t, p) => received.add(p.toString()));
    cleanup.push(() => again.endAsync(true));
    await waitUntil('all 200 queued batches', () => received.size === 200, 10_000, 50);
  });
});
