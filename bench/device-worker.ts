import type { MqttClient } from 'mqtt';
import { connectMqttAsync } from '../core/mqtt-reconnect.js';
import { topics } from '../broker/contract/index.js';

/**
 * A thousand MQTT devices in one process (started by devices.ts), each
 * publishing one JSON reading (QoS 1) on its own uplink topic once a second,
 * spread evenly over the second, to the hub broker. They share `connections`
 * connections (a login costs the broker a scrypt hash, and a thousand of them
 * would measure that instead). Driven over the IPC channel: `go`, `stop`.
 */
const p = JSON.parse(process.argv[2] ?? '{}') as { brokerUrl: string; site: string; devices: number; connections: number; everyMs: number; login: { username: string; password: string } };
const send = (m: unknown) => {
  if (process.connected) process.send?.(m, undefined, {}, () => {});
};
process.on('disconnect', () => process.exit(3));

const clients: MqttClient[] = [];
let published = 0;
let acked = 0;
let failed = 0;
let timer: NodeJS.Timeout | undefined;

for (let i = 0; i < p.connections; i += 10) {
  await Promise.all(
    Array.from({ length: Math.min(10, p.connections - i) }, async (_, k) => {
      clients[i + k] = await connectMqttAsync(p.brokerUrl, { ...p.login, clientId: `bench-devices-${i + k}`, clean: true, connectTimeout: 30_000 });
    }),
  );
}
send({ type: 'ready' });

process.on('message', (m: { type: string }) => {
  if (m.type === 'go') {
    const started = performance.now();
    let next = 0;
    // One timer for all: every 5 ms, the devices whose moment in the second has come.
    timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / p.everyMs) * p.devices);
      for (; next < due; next++) {
        const i = next % p.devices;
        const temp = 20 + (i % 50) / 10;
        published++;
        clients[i % p.connections]!.publish(topics.deviceUplink(p.site, `th-${i}`), JSON.stringify({ temp, ts: Date.now() }), { qos: 1 }, (err) => (err ? failed++ : acked++));
      }
    }, 5);
  } else if (m.type === 'stop') {
    clearInterval(timer);
    const deadline = Date.now() + 10_000;
    const wait = () => {
      if (acked + failed >= published || Date.now() > deadline) {
        send({ type: 'done', published, acked, failed });
        void Promise.all(clients.map((c) => c.endAsync(true))).then(() => process.disconnect?.());
      } else setTimeout(wait, 20);
    };
    wait();
  }
});
