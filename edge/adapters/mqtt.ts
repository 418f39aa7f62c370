import mqtt, { type MqttClient } from 'mqtt';
import { mqttAuthOptions, refusalHint } from '../../core/mqtt-client-auth.js';
import { decodeJsonPayload } from '../../device-profiles/codecs/json-payload.js';
import type { Adapter, AdapterContext, AdapterHealth } from './adapter.js';
import type { DeviceBinding } from '../device-binding.js';

/**
 * MQTT devices: subscribes to each device's own topic (on the hub's broker or a
 * site broker) and decodes its JSON payload with the device's profile.
 * mqtt.js reconnects by itself; subscriptions are renewed on every connect
 * because a restarted broker may have forgotten them.
 *
 * Nothing is lost between the device and the outbox: the session is persistent
 * (clean: false, a client id fixed per gateway), so the broker keeps QoS 1
 * messages while the gateway is down [MQTT-3.1.2-5], and a message is
 * acknowledged only after it is in the outbox: mqtt.js sends the PUBACK when
 * `handleMessage` calls back, and `onDecoded` returns once the outbox has it
 * (for an alarm, once it is flushed to the disk).
 */
export function createMqttAdapter(ctx: AdapterContext): Adapter {
  const byTopic = new Map<string, DeviceBinding>(ctx.devices.flatMap((d) => (d.topic ? [[d.topic, d] as const] : [])));
  const errors: Record<string, number> = {};
  let lastValueAt: number | null = null;
  let client: MqttClient | undefined;

  const countError = (kind: string) => {
    errors[kind] = (errors[kind] ?? 0) + 1;
  };

  return {
    kind: 'mqtt',
    async start() {
      client = mqtt.connect(ctx.brokerUrl, {
        ...mqttAuthOptions(ctx.brokerAuth),
        clientId: `cosafe-edge-mqtt-${ctx.sessionId ?? `${process.pid}-${Math.random().toString(16).slice(2, 8)}`}`,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        clean: false,
      });
      client.on('connect', () => {
        ctx.logger.info({ broker: ctx.brokerUrl, devices: byTopic.size }, 'mqtt adapter connected');
        client?.subscribe([...byTopic.keys()], { qos: 1 }, (err, granted) => {
          // The broker answers 0x80 for a topic the gateway's credentials may not read [MQTT-3.9.3].
          const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
          if (err || refused.length) {
            countError('subscribe');
            ctx.logger.error({ err: err?.message, refused }, 'mqtt adapter could not subscribe to device topics');
          }
        });
      });
      client.on('error', (err) => {
        countError('connection');
        const hint = refusalHint(err, 'gateway.credentials');
        if (hint) ctx.logger.error({ err: err.message, hint }, 'the hub refused the mqtt adapter');
        else ctx.logger.warn({ err: err.message }, 'mqtt adapter connection error');
      });
      client.handleMessage = (packet, done) => {
        const binding = byTopic.get(packet.topic);
        if (binding?.profile.transport === 'mqtt') {
          const receivedAt = ctx.clock.now();
          const outcome = decodeJsonPayload(binding.profile, packet.payload as Buffer, receivedAt);
          if (outcome.errors.length) countError('decode');
          if (outcome.values.length) lastValueAt = receivedAt;
          // An alarm is acknowledged to its device only once it is on the disk.
          const durable = ctx.onDecoded(binding, outcome);
          if (durable) return void durable.then(() => done());
        }
        done();
      };
    },
    async stop() {
      await client?.endAsync();
      client = undefined;
    },
    health(): AdapterHealth {
      return { kind: 'mqtt', connected: client?.connected ?? false, lastValueAt, errors: { ...errors } };
    },
  };
}
