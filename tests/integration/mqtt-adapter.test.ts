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
import { AdapterHarness } from '../helpers/adapter-harness.js';
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
});
