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
 * The hub broker keeps what it has acknowledged. Two cases: a crash in the
 * instant between Aedes's PUBACK and its queueing the message (made certain here
 * by a persistence that never finishes queueing, as if the process died there),
 * and a real `cosafe broker` killed with SIGKILL with messages queued for a
 * persistent session.
 */
const dir = mkdtempSync(join(tmpdir(), 'cosafe-broker-'));
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Dies, in effect, between the PUBACK and the queue: the queueing never completes. */
class DiesBeforeQueueing extends SqlitePersistence {
  override async outgoingEnqueueCombi(): Promise<void> {
    await new Promise(() => {});
  }
}

async function broker(persistence: SqlitePersistence, journal: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker({ persistence });
  if (journal) await persistBeforeAck(aedes, persistence, silentLogger, new Metrics());
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

async function crashAfterAck(path: string, journal: boolean): Promise<string[]> {
  // First run: a persistent subscriber, then a publish that is acknowledged but never queued.
  const first = await broker(new DiesBeforeQueueing(path), journal);
  const sub = await subscriber(first.url, []);
  await sub.subscribeAsync('site/+/events', { qos: 1 });
  await sub.endAsync(true);
  const pub = await mqtt.connectAsync(first.url, { clientId: 'gateway-like', reconnectPeriod: 0 });
  await pub.publishAsync('site/a/events', 'fire alarm', { qos: 1 }); // resolves on PUBACK
  pub.end(true);
  await first.close(); // the "crash": only the file remains

  // Second run on the same file: the subscriber comes back to its session.
  const second = await broker(new SqlitePersistence(path), journal);
  cleanup.push(() => second.close());
  const received: string[] = [];
  const again = await subscriber(second.url, received);
  cleanup.push(() => again.endAsync(true));
  // A message published after the restart: once it is there, the session's queue was handed over.
  const later = await mqtt.connectAsync(second.url, { clientId: 'gateway-like', reconnectPeriod: 0 });
  await later.publishAsync('site/a/events', 'after the restart', { qos: 1 });
  await later.endAsync(true);
  await waitUntil('the message after the restart', () => received.includes('after the restart') && (!journal || received.includes('fire alarm')));
  return received.sort();
}

describe('hub broker durability', () => {
  it('a message acknowledged just before a crash reaches the persistent subscriber after the restart', async () => {
    expect(await crashAfterAck(join(dir, 'journal.db'), true)).toEqual(['after the restart', 'fire alarm']);
  });

  it('(control) without the journal, that message would be lost', async () => {
    expect(await crashAfterAck(join(dir, 'no-journal.db'), false)).toEqual(['after the restart']);
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
