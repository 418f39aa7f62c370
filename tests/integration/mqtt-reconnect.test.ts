import { createServer, Socket, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectMqtt, hurryReconnect, withoutNagle } from '../../core/mqtt-reconnect.js';
import { freePort, waitUntil } from '../helpers/processes.js';

/** A real Aedes broker on a TCP port (what the clients' reconnects are tested against; the hub's own auth is not the point here). */
async function startAedes(port: number): Promise<{ close(): Promise<void>; clients(): number }> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    clients: () => aedes.connectedClients,
    async close() {
      // As a crash looks to the client: every connection cut at once.
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

const open: MqttClient[] = [];
const brokers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.close().catch(() => {})));
});

describe('clients reconnect with backoff and jitter', () => {
  it('waits a jittered, doubling time between attempts while the broker is away, and starts over once admitted', async () => {
    const port = await freePort();
    // A server that cuts every connection at once: each attempt fails.
    const refusing = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => refusing.listen(port, '127.0.0.1', resolve));
    // random() = 0.5: half of each window, so the schedule can be read exactly.
    const client = connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'backoff-schedule', connectTimeout: 5000 }, { baseMs: 20, capMs: 160, random: () => 0.5 });
    open.push(client);
    const waits: number[] = [];
    // After cosafe's listener (prepended) and mqtt.js' own: the period the reconnect now waits.
    client.on('close', () => waits.push(client.options.reconnectPeriod!));
    await waitUntil('six failed attempts', () => waits.length >= 6, 20_000, 10);
    expect(waits.slice(0, 6)).toEqual([10, 20, 40, 80, 80, 80]);

    // The broker comes back on the same port: the client gets in, and its next loss starts from the first window.
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    const broker = await startAedes(port);
    brokers.push(broker);
    await waitUntil('the client to be admitted', () => client.connected, 20_000, 10);
    waits.length = 0;
    await broker.close();
    await waitUntil('the loss to be seen', () => waits.length >= 1, 20_000, 10);
    expect(waits[0]).toBe(10);
  });

  it('comes back by itself when its broker restarts', async () => {
    const port = await freePort();
    let broker = await startAedes(port);
    brokers.push(broker);
    const client = connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'comes-back', clean: false }, { baseMs: 50, capMs: 400 });
    open.push(client);
    let connects = 0;
    client.on('connect', () => connects++);
    await waitUntil('the first connection', () => connects === 1, 20_000, 10);
    await broker.close();
    broker = await startAedes(port);
    brokers.push(broker);
    await waitUntil('the client to reconnect to the restarted broker', () => connects === 2 && broker.clients() === 1, 20_000, 10);
  });

  it('given the brokers of a cluster, moves to the next one when its broker dies', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startAedes(portA);
    const b = await startAedes(portB);
    brokers.push(a, b);
    const client = connectMqtt([`mqtt://127.0.0.1:${portA}`, `mqtt://127.0.0.1:${portB}`], { clientId: 'fails-over' }, { baseMs: 50, capMs: 400 });
    open.push(client);
    await waitUntil('the client on broker A', () => a.clients() === 1, 20_000, 10);
    expect(b.clients()).toBe(0);
    await a.close();
    await waitUntil('the client on broker B', () => client.connected && b.clients() === 1, 20_000, 10);
  });

  // A fire alarm raised during a long outage must not wait out a 30 s backoff window once the hub is back.
  // The waits here are 10 minutes: the client can only get in within the test's time by hurrying.
  const LONG = { baseMs: 600_000, capMs: 600_000, random: () => 0.5 };

  it('hurried while it waits (a fire alarm was raised), it tries again at once instead of after its long wait', async () => {
    const port = await freePort();
    const refusing = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => refusing.listen(port, '127.0.0.1', resolve));
    const client = connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'hurried', connectTimeout: 5000 }, { ...LONG, urgentCapMs: 100 });
    open.push(client);
    const waits: number[] = [];
    client.on('close', () => waits.push(client.options.reconnectPeriod!));
    await waitUntil('the first failed attempt', () => waits.length >= 1, 20_000, 10);
    expect(waits[0]).toBe(300_000);
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    const broker = await startAedes(port);
    brokers.push(broker);
    hurryReconnect(client);
    await waitUntil('the hurried client to be admitted', () => client.connected && broker.clients() === 1, 30_000, 10);
    // Hurrying a connected client does nothing.
    hurryReconnect(client);
    expect(client.connected).toBe(true);
  });

  it('while its policy says it is urgent, no wait is longer than the urgent cap', async () => {
    const port = await freePort();
    const refusing = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => refusing.listen(port, '127.0.0.1', resolve));
    let urgent = false;
    const client = connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'urgent', connectTimeout: 5000 }, { ...LONG, urgent: () => urgent, urgentCapMs: 100 });
    open.push(client);
    const waits: number[] = [];
    client.on('close', () => waits.push(client.options.reconnectPeriod!));
    await waitUntil('the first failed attempt', () => waits.length >= 1, 20_000, 10);
    expect(waits[0]).toBe(300_000);
    urgent = true;
    hurryReconnect(client);
    await waitUntil('two more failed attempts', () => waits.length >= 3, 30_000, 10);
    expect(waits.slice(1, 3)).toEqual([50, 50]);
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    const broker = await startAedes(port);
    brokers.push(broker);
    await waitUntil('the urgent client to be admitted', () => client.connected && broker.clients() === 1, 30_000, 10);
  });

  it('an alarm client sends without Nagle on its first connection and on every reconnect; another client keeps it', async () => {
    const port = await freePort();
    let broker = await startAedes(port);
    brokers.push(broker);
    const noDelay = new Set<Socket>();
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay').mockImplementation(function (this: Socket, on?: boolean) {
      if (on !== false) noDelay.add(this);
      return this;
    });
    try {
      const alarms = withoutNagle(connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'alarm-lane' }, { baseMs: 50, capMs: 400 }));
      const other = connectMqtt(`mqtt://127.0.0.1:${port}`, { clientId: 'telemetry-lane' }, { baseMs: 50, capMs: 400 });
      open.push(alarms, other);
      await waitUntil('both connected', () => alarms.connected && other.connected, 20_000, 10);
      expect(noDelay.has(alarms.stream as Socket)).toBe(true);
      expect(noDelay.has(other.stream as Socket)).toBe(false);
      const first = alarms.stream;
      await broker.close();
      broker = await startAedes(port);
      brokers.push(broker);
      await waitUntil('the alarm client to reconnect', () => alarms.connected && alarms.stream !== first, 20_000, 10);
      expect(noDelay.has(alarms.stream as Socket)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
