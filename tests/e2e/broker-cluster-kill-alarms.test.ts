import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialStorePath } from '../../broker/auth/credential-store.js';
import { subscriptions, topics } from '../../broker/contract/topics.js';
import { connectMqtt } from '../../core/mqtt-reconnect.js';
import { addCredential, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * Two `cosafe broker` processes on one real redis-server (AOF, appendfsync
 * always). A gateway that lists both streams alarms into broker A; the
 * subscriber (cloud-sync's persistent session) is on broker B. Broker A is
 * killed with SIGKILL mid-stream: the gateway moves to B, and every alarm
 * either broker acknowledged (PUBACK) reaches the subscriber.
 */
const root = mkdtempSync(join(tmpdir(), 'cosafe-cluster-kill-'));
const spawned: Spawned[] = [];
const clients: MqttClient[] = [];
let redis: RedisServer | undefined;
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await Promise.all(spawned.map((s) => s.stop('SIGTERM', 10_000)));
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

function brokerConfig(name: string, port: number, redisUrl: string): { file: string; dataDir: string } {
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [`dataDir: ${dataDir}`, 'broker:', '  host: 127.0.0.1', `  port: ${port}`, '  cluster:', `    redisUrl: ${redisUrl}`, `    brokerId: ${name}`, '    heartbeatMs: 500', '    livenessMs: 1500', ''].join('\n'),
  );
  return { file, dataDir };
}

async function startBroker(file: string, port: number): Promise<Spawned> {
  const proc = startCosafe(['broker', '--config', file]);
  spawned.push(proc);
  await waitUntil(`broker on port ${port}`, () => {
    if (proc.child.exitCode !== null) throw new Error(`broker exited: ${proc.output().slice(-2000)}`);
    return /broker listening/.test(proc.output());
  }, 60_000);
  return proc;
}

describe('a cluster of brokers: one is killed while a gateway streams alarms', () => {
  it('loses no alarm either broker acknowledged', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    const [portA, portB] = [await freePort(), await freePort()];
    const a = brokerConfig('broker-a', portA, redis.url);
    const b = brokerConfig('broker-b', portB, redis.url);
    const gatewayLogin = await addCredential(a.file, '--role', 'gateway', '--site', 'bakery-12', '--gateway', 'gw-1');
    const serviceLogin = await addCredential(a.file, '--role', 'service', '--id', 'cloud-sync');
    // Copied here as well, so this test does not depend on the brokers sharing credentials through Redis
    // (broker-cluster-limits.test.ts and broker-cluster-kill.test.ts prove that).
    for (const suffix of ['', '-wal', '-shm']) {
      const from = credentialStorePath(a.dataDir) + suffix;
      if (existsSync(from)) copyFileSync(from, credentialStorePath(b.dataDir) + suffix);
    }
    const brokerA = await startBroker(a.file, portA);
    await startBroker(b.file, portB);
    const urlA = `mqtt://127.0.0.1:${portA}`;
    const urlB = `mqtt://127.0.0.1:${portB}`;

    const sync = connectMqtt(urlB, { ...serviceLogin, clientId: 'cloud-sync-events', clean: false });
    clients.push(sync);
    const seen = new Set<number>();
    sync.on('message', (_t, payload) => seen.add((JSON.parse(payload.toString()) as { n: number }).n));
    await waitUntil('the subscriber on broker B', () => sync.connected, 30_000);
    await sync.subscribeAsync(subscriptions.allEvents, { qos: 1 });

    const gw = connectMqtt([urlA, urlB], { ...gatewayLogin, clientId: 'bakery-12-gw-1-events' }, { baseMs: 100, capMs: 1000 });
    clients.push(gw);
    await waitUntil('the gateway on broker A', () => gw.connected, 30_000);
    const acked = new Set<number>();
    let n = 0;
    let stop = false;
    // As the gateway's outbox does: a message goes again until it is acknowledged.
    const send = (k: number) => {
      gw.publish(topics.events('bakery-12', 'gw-1'), JSON.stringify({ n: k }), { qos: 1 }, (err) => {
        if (!err) acked.add(k);
        else if (!stop) setTimeout(() => send(k), 50);
      });
    };
    const timer = setInterval(() => {
      for (let i = 0; i < 5; i++) send(++n);
    }, 10);
    try {
      await waitUntil('alarms acknowledged by broker A', () => acked.size >= 100, 30_000);
      await brokerA.stop('SIGKILL');
      const before = acked.size;
      await waitUntil('the gateway on broker B, acknowledged again', () => gw.connected && acked.size >= before + 100, 60_000);
    } finally {
      clearInterval(timer);
    }
    stop = true;
    const all = [...acked];
    await waitUntil('every acknowledged alarm at the subscriber', () => all.every((k) => seen.has(k)), 60_000);
    expect(all.filter((k) => !seen.has(k))).toEqual([]);
  });
});
