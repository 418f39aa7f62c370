import mqtt, { type MqttClient } from 'mqtt';
import { mqttAuthOptions, refusalHint } from '../../core/mqtt-client-auth.js';
import { decodeJsonPayload } from '../../device-profiles/codecs/json-payload.js';
import type { Adapter, AdapterContext, AdapterHealth } from './adapter.js';
import type { DeviceBinding } from '../device-binding.js';

/**
 * MQTT devices: subscribes to each device's own topic (on the hub's broker or a
 * site broker) and decodes its JSON payload with the device's profile.
 * mqtt.js reconnects by itself; subscriptions are renewed on every connect
 * because a restarted broker has forgotten them.
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
        clientId: `cosafe-edge-mqtt-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        clean: true,
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
      client.on('message', (topic, payload) => {
        const binding = byTopic.get(topic);
        if (!binding) return;
        const receivedAt = ctx.clock.now();
        if (binding.profile.transport !== 'mqtt') return;
        const outcome = decodeJsonPayload(binding.profile, payload, receivedAt);
        if (outcome.errors.length) countError('decode');
        if (outcome.values.length) lastValueAt = receivedAt;
        ctx.onDecoded(binding, outcome);
      });
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
