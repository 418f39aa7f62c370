import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { EphemeralIdentities } from '../../broker/auth/ephemeral-identities.js';
import { topics } from '../../broker/contract/index.js';
import { startHubBroker, type HubBroker } from '../../broker/hub.js';
import { buildConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { loadBuiltinProfiles } from '../../device-profiles/loader.js';
import { createMqttAdapter } from '../../edge/adapters/mqtt.js';
import { AdapterHarness, type HarnessOptions, type Received } from '../helpers/adapter-harness.js';
import { freePort, waitUntil } from '../helpers/processes.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('MQTT device adapter', () => {
  it('resumes reading its devices after the broker restarts, without a gateway restart', async () => {
    const config = buildConfig({ broker: { host: '127.0.0.1', port: await freePort(), persistence: 'memory' } });
    // The same identities before and after the restart, as a broker with its credential store would have.
    const ephemeral = new EphemeralIdentities();
    const start = () => startHubBroker({ config: config.broker, ephemeral, logger: silentLogger, metrics: new Metrics() });
    let broker: HubBroker = await start();
    cleanup.push(() => broker.close());
    const gateway = ephemeral.issue({ role: 'gateway', id: '@gateway:site-1:gw-1', site: 'site-1', gateway: 'gw-1' });
    const device = ephemeral.issue({ role: 'device', id: '@device:site-1:smoke-1', site: 'site-1', device: 'smoke-1' });

    const profile = loadBuiltinProfiles().get('mqtt-smoke-detector')!;
    const topic = topics.deviceUplink('site-1', 'smoke-1');
    const harness = new AdapterHarness(createMqttAdapter, [{ device: { id: 'smoke-1', profile: profile.id }, profile, topic }], { brokerUrl: broker.url, brokerAuth: gateway });
    await harness.start();
    cleanup.push(() => harness.stop());
    await waitUntil('the adapter to connect', () => harness.adapter.health().connected, 5000);
    // Supervision counts the device's silence from here: connected, and its subscription granted.
    await waitUntil('the adapter to hear its device', () => harness.adapter.hearing!().has('smoke-1'), 5000);

    const sensor = mqtt.connect(broker.url, { clientId: 'smoke-1', reconnectPeriod: 200, ...device });
    cleanup.push(() => sensor.endAsync(true));
    await new Promise((r) => sensor.once('connect', r));
    await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 90 }), { qos: 1 });
    await waitUntil('the first reading', () => harness.values('smoke-1').some((v) => v.metric === 'battery' && v.value === 90), 5000);

    await broker.close();
    await waitUntil('the adapter to notice', () => !harness.adapter.health().connected, 5000);
    expect(harness.adapter.hearing!().size).toBe(0);
    broker = await start();
    await waitUntil('the adapter back on the broker', () => harness.adapter.health().connected, 10_000);
    await waitUntil('the adapter to hear its device again', () => harness.adapter.hearing!().has('smoke-1'), 10_000);
    await waitUntil('the sensor back on the broker', () => sensor.connected, 10_000);
    // The restarted broker has forgotten every subscription: the adapter must have subscribed again.
    await waitUntil(
      'a reading after the restart',
      async () => {
        await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 77 }), { qos: 1 });
        return harness.values('smoke-1').some((v) => v.metric === 'battery' && v.value === 77);
      },
      10_000,
      300,
    );
  });

  it('acknowledges a message once its readings are stored; when the outbox refused them, the broker delivers it again', async () => {
    // The outbox refuses the first message with battery 50 (a full disk, say), and stores everything else.
    let refusals = 0;
    const battery = (r: Received | undefined) => r?.outcome.values.find((v) => v.metric === 'battery')?.value;
    const { harness, sensor, topic } = await adapterWithSensor('th-1', { readingsStored: async (last) => !(battery(last) === 50 && refusals++ === 0) });
    const batteries = () => harness.values('th-1').filter((v) => v.metric === 'battery').map((v) => v.value);
    await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 40 }), { qos: 1 });
    await waitUntil('the first message', () => batteries().length === 1, 5000);
    await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 50 }), { qos: 1 });
    // Refused: not acknowledged, the adapter reconnects, and the broker sends it again (and only it: 40 was acknowledged).
    await waitUntil('the refused message delivered again', () => batteries().length >= 3, 10_000);
    await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 60 }), { qos: 1 });
    await waitUntil('the next message', () => batteries().includes(60), 5000);
    expect(batteries()).toEqual([40, 50, 50, 60]);
    expect(harness.adapter.health().errors.outbox).toBe(1);
  });

  it('does not acknowledge an alarm whose event the outbox refused: the broker delivers it again', async () => {
    // The event outbox refuses the first alarm (a disk error), and takes everything after.
    let refusals = 0;
    const smoke = (r: Received) => r.outcome.values.some((v) => v.metric === 'smoke' && v.value === 1);
    const { harness, sensor, topic } = await adapterWithSensor('smoke-1', { raised: (r) => (smoke(r) ? Promise.resolve(refusals++ > 0) : undefined) });
    await sensor.publishAsync(topic, JSON.stringify({ smoke: true, battery: 90 }), { qos: 1 });
    await waitUntil('the alarm delivered again after the refusal', () => harness.received.filter(smoke).length >= 2, 10_000);
    await sensor.publishAsync(topic, JSON.stringify({ smoke: false, battery: 90 }), { qos: 1 });
    await waitUntil('the next message', () => harness.received.length >= 3, 5000);
    // Taken the second time: not delivered a third.
    expect(harness.received.map((r) => (smoke(r) ? 'smoke' : 'clear'))).toEqual(['smoke', 'smoke', 'clear']);
    expect(harness.adapter.health().errors.outbox).toBe(1);
  });
});

/**
 * A hub broker (in memory), the adapter on a persistent session (the broker
 * keeps what it did not acknowledge for its next connection) reading one smoke
 * detector of site-1, and the detector connected with its own login.
 */
async function adapterWithSensor(id: string, answers: Pick<HarnessOptions, 'readingsStored' | 'raised'>) {
  const config = buildConfig({ broker: { host: '127.0.0.1', port: await freePort(), persistence: 'memory' } });
  const ephemeral = new EphemeralIdentities();
  const broker = await startHubBroker({ config: config.broker, ephemeral, logger: silentLogger, metrics: new Metrics() });
  cleanup.push(() => broker.close());
  const gateway = ephemeral.issue({ role: 'gateway', id: '@gateway:site-1:gw-1', site: 'site-1', gateway: 'gw-1' });
  const device = ephemeral.issue({ role: 'device', id: `@device:site-1:${id}`, site: 'site-1', device: id });
  const profile = loadBuiltinProfiles().get('mqtt-smoke-detector')!;
  const topic = topics.deviceUplink('site-1', id);
  const harness = new AdapterHarness(createMqttAdapter, [{ device: { id, profile: profile.id }, profile, topic }], { brokerUrl: broker.url, brokerAuth: gateway, sessionId: 'site-1-gw-1', ...answers });
  await harness.start();
  cleanup.push(() => harness.stop());
  await waitUntil('the adapter to hear its device', () => harness.adapter.hearing!().has(id), 5000);
  const sensor = mqtt.connect(broker.url, { clientId: id, reconnectPeriod: 200, ...device });
  cleanup.push(() => sensor.endAsync(true));
  await new Promise((r) => sensor.once('connect', r));
  return { harness, sensor, topic };
}
