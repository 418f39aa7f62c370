import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../broker/contract/index.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { login, mosquittoPub } from '../helpers/mosquitto.js';
import { waitUntil } from '../helpers/processes.js';
import { connectPacket, packet, sendRaw } from '../helpers/raw-mqtt.js';

/**
 * One client floods the broker with malformed MQTT and oversized messages
 * while a well-behaved one keeps publishing: the broker stays up and the good
 * client loses nothing, not one message.
 */
const N = 300;
const ROUNDS = 30;
const MAX_PACKET = 16_384;
let t: TestBroker;
let good: MqttClient;
let subscriber: MqttClient;
let attacker: { username: string; password: string };
const received: string[] = [];
let goodClosed = 0;

beforeAll(async () => {
  t = await startTestBroker({
    limits: { maxPacketBytes: MAX_PACKET, connectTimeoutMs: 1000, connectAttemptsPerMinute: 100_000, authFailuresPerMinute: 100_000, authFailedIdentitiesPerMinute: 100_000 },
  });
  const [device, gateway] = await Promise.all([
    t.credential({ role: 'device', id: 's1.temp-1', site: 's1', device: 'temp-1' }),
    t.credential({ role: 'gateway', id: 's1.gw-1', site: 's1', gateway: 'gw-1' }),
  ]);
  attacker = await t.credential({ role: 'device', id: 's1.rogue', site: 's1', device: 'rogue' });
  subscriber = await t.connect({ clientId: 'good-subscriber', ...gateway });
  good = await t.connect({ clientId: 'good-publisher', ...device });
  for (const c of [good, subscriber]) c.on('close', () => goodClosed++);
  subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
  await subscriber.subscribeAsync(topics.deviceUplink('s1', 'temp-1'), { qos: 1 });
});

afterAll(async () => {
  await t?.close();
});

async function attack(port: number): Promise<void> {
  const uplink = topics.deviceUplink('s1', 'rogue');
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all([
      // Noise before any CONNECT.
      sendRaw(port, randomBytes(2048), 300),
      // A PUBLISH header announcing 100 MB, after a valid login.
      sendRaw(port, Buffer.concat([connectPacket(`rogue-big-${round}`, attacker), Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30]), randomBytes(8192)])),
      // Reserved header flags [MQTT-2.2.2-2].
      sendRaw(port, Buffer.concat([connectPacket(`rogue-flags-${round}`, attacker), Buffer.from([0x80, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61])])),
      // A remaining length of five bytes [MQTT-2.2.3].
      sendRaw(port, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])),
      // A second CONNECT on one connection [MQTT-3.1.0-2].
      sendRaw(port, Buffer.concat([connectPacket(`rogue-twice-${round}`, attacker), connectPacket(`rogue-twice-${round}`, attacker)])),
      // A well-formed publish, just too big.
      sendRaw(port, Buffer.concat([connectPacket(`rogue-fat-${round}`, attacker), packet({ cmd: 'publish', topic: uplink, payload: Buffer.alloc(MAX_PACKET), qos: 0, dup: false, retain: false })])),
      // And from a client nobody here wrote.
      round % 10 === 0 ? mosquittoPub(['-p', String(port), ...login(attacker), '-t', uplink, '-q', '1', '-m', 'x'.repeat(MAX_PACKET * 2)]) : undefined,
    ]);
  }
}

async function publishWell(): Promise<void> {
  for (let i = 0; i < N; i++) {
    await good.publishAsync(topics.deviceUplink('s1', 'temp-1'), JSON.stringify({ seq: i }), { qos: 1 });
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
  }
}

describe('a flood of malformed and oversized packets', () => {
  it('costs the well-behaved client nothing', async () => {
    await Promise.all([attack(t.broker.port), publishWell()]);
    // One more, last: delivered in order, so once it is there, anything extra would have come before it.
    await good.publishAsync(topics.deviceUplink('s1', 'temp-1'), JSON.stringify({ seq: N }), { qos: 1 });
    await waitUntil(`all ${N} messages and the last one at the subscriber`, () => received.some((p) => (JSON.parse(p) as { seq: number }).seq === N), 15_000);
    expect(received.map((p) => (JSON.parse(p) as { seq: number }).seq)).toEqual([...Array(N + 1).keys()]);
    expect(goodClosed).toBe(0);
    expect(good.connected && subscriber.connected).toBe(true);
  });

  it('counted every oversized packet, and still lets new clients in', async () => {
    expect(t.metrics.get('cosafe_broker_limit_hits_total', { limit: 'packet-size' })).toBeGreaterThanOrEqual(2 * ROUNDS);
    expect(t.metrics.get('cosafe_broker_client_errors_total')).toBeGreaterThanOrEqual(ROUNDS);
    expect(t.logs().some((l) => l.code === 'COSAFE_ERR_BROKER_LIMIT' && l.limit === 'packet-size')).toBe(true);
    const late = await t.connect({ clientId: 'late-comer', username: attacker.username, password: attacker.password });
    await late.publishAsync(topics.deviceUplink('s1', 'rogue'), 'small and polite', { qos: 1 });
    await waitUntil('every connection of the flood to be gone', () => t.broker.connectedClients() === 3, 5000);
  });
});
