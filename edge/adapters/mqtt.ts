import { setTimeout as delay } from 'node:timers/promises';
import { type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { connectMqtt, type BrokerUrls } from '../../core/mqtt-reconnect.js';
import { subscriptions, parseTopic } from '../../broker/contract/index.js';
import { mqttAuthOptions, refusalHint } from '../../core/mqtt-client-auth.js';
import { underPrefix } from '../../core/vocabulary.js';
import { decodeJsonPayload } from '../../device-profiles/codecs/json-payload.js';
import { REFUSED, type Adapter, type AdapterContext, type AdapterHealth, type PortHealth } from './adapter.js';
import type { BridgeConfig, DeviceBinding } from '../device-binding.js';
import { readAvailability } from './mqtt-availability.js';

/** A refused subscription is tried again after this, doubling up to the maximum: a credential issued meanwhile works without a reload. */
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 10_000;
/** How long stop() waits for the PUBACKs of messages whose readings are being written. */
const STOP_ACK_WAIT_MS = 1000;

type FilterState = 'subscribing' | 'subscribed' | 'refused';

/**
 * MQTT devices: reads every device uplink of the gateway's site, each
 * bridge's whole prefix and each device's own topic (on the hub's broker or a
 * site broker), and decodes each configured device's JSON payload with its
 * profile. A message from a device that is not configured is acknowledged and
 * reported (onUnknownDevice), so a person can add it. A bridge's availability
 * topics (zigbee2mqtt: `<prefix>/<name>/availability`, `<prefix>/bridge/state`)
 * feed supervision.
 *
 * mqtt.js reconnects by itself; subscriptions are renewed on every connect
 * because a restarted broker may have forgotten them. A subscription the broker
 * refuses (0x80: no credential names that topic or prefix yet) is logged with
 * the command that fixes it and tried again with backoff.
 *
 * Nothing is lost between the device and the outbox: the session is persistent
 * (clean: false, a client id fixed per gateway), so the broker keeps QoS 1
 * messages while the gateway is down [MQTT-3.1.2-5], and a message is
 * acknowledged only after it is in the outbox: its PUBACK waits until the
 * readings of its turn of the event loop are written (`readingsStored`, one
 * transaction for all of them, see holdAcks), and for an alarm until the event
 * is flushed to the disk. An alarm whose event the outbox refused is not
 * acknowledged at all: the adapter reconnects, and the broker delivers it
 * again. While the outbox refuses readings (a full disk) they wait in the
 * publisher's memory, and their PUBACKs with them; should they be given up
 * (the gateway stops), the PUBACKs are never sent and the broker delivers the
 * messages again.
 */
export function createMqttAdapter(ctx: AdapterContext): Adapter {
  const byTopic = new Map<string, DeviceBinding>(ctx.devices.flatMap((d) => (d.topic ? [[d.topic, d] as const] : [])));
  const bridges = ctx.bridges ?? [];
  const filters = new Map<string, { state: FilterState; why: string; retryMs: number; timer?: NodeJS.Timeout }>(subscriptionFilters(ctx, bridges).map(([f, why]) => [f, { state: 'subscribing', why, retryMs: RETRY_MIN_MS }]));
  const errors: Record<string, number> = {};
  let lastValueAt: number | null = null;
  let client: MqttClient | undefined;

  const countError = (kind: string) => {
    errors[kind] = (errors[kind] ?? 0) + 1;
  };

  const subscribe = (wanted: string[]) => {
    const c = client;
    if (!c || wanted.length === 0) return;
    for (const f of wanted) clearTimeout(filters.get(f)?.timer);
    // mqtt.js reports a refusal as "Unspecified error" and passes the SUBACK as the third argument:
    // its return codes, in the order of the filters, say which ones [MQTT-3.9.3].
    c.subscribe(wanted, { qos: 1 }, (err, _granted, packet) => {
      if (c !== client) return;
      const codes = (packet as { granted?: number[] } | undefined)?.granted;
      if (err && !codes) {
        countError('subscribe');
        ctx.logger.warn({ err: err.message, filters: wanted }, 'mqtt adapter could not subscribe; trying again on the next connect');
        return;
      }
      wanted.forEach((f, i) => {
        const entry = filters.get(f);
        if (!entry) return;
        if ((codes?.[i] ?? 0) < 0x80) {
          if (entry.state === 'refused') ctx.logger.info({ filter: f }, `mqtt adapter now reads ${f}`);
          entry.state = 'subscribed';
          entry.retryMs = RETRY_MIN_MS;
          return;
        }
        countError('subscribe');
        if (entry.state !== 'refused') {
          ctx.logger.error({ code: 'COSAFE_ERR_ACL_DENIED', filter: f, hint: entry.why, retryInMs: entry.retryMs }, `the broker refused the subscription to ${f}; trying again`);
        }
        entry.state = 'refused';
        entry.timer = setTimeout(() => subscribe([f]), entry.retryMs);
        entry.retryMs = Math.min(RETRY_MAX_MS, entry.retryMs * 2);
      });
    });
  };

  /** Resolves once what the message raised is safe; undefined when it raised nothing. */
  const onMessage = (packet: IPublishPacket): Promise<boolean> | undefined => {
    const { topic } = packet;
    const receivedAt = ctx.clock.now();
    const binding = byTopic.get(topic);
    if (binding?.profile.transport === 'mqtt') {
      const outcome = decodeJsonPayload(binding.profile, packet.payload as Buffer, receivedAt);
      if (outcome.errors.length) countError('decode');
      if (outcome.values.length) lastValueAt = receivedAt;
      return ctx.onDecoded(binding, outcome);
    }
    const bridge = bridges.find((b) => underPrefix(topic, b.prefix));
    if (bridge) return onBridgeTopic(bridge, topic, packet.payload as Buffer);
    const parsed = parseTopic(topic);
    ctx.onUnknownDevice?.(parsed?.kind === 'deviceUplink' ? { topic, device: parsed.device } : { topic });
    return undefined;
  };

  /** zigbee2mqtt's topic tree under its base topic: devices, their availability, the bridge's own topics. */
  const onBridgeTopic = (bridge: BridgeConfig, topic: string, payload: Buffer): Promise<boolean> | undefined => {
    const rest = topic.slice(bridge.prefix.length + 1);
    if (rest === 'bridge/state') {
      // The bridge itself is gone (its last will): none of its devices can report.
      if (readAvailability(payload) === 'offline') {
        const raised = ctx.devices.filter((b) => b.bridge?.id === bridge.id).map((b) => ctx.onDecoded(b, { values: [], signals: [], errors: [], availability: 'offline', availabilityText: `bridge ${bridge.id} (${bridge.prefix}) is offline` }));
        const pending = raised.filter((p) => p !== undefined);
        return pending.length ? Promise.all(pending).then((oks) => oks.every(Boolean)) : undefined;
      }
      return undefined;
    }
    // Requests and answers of the bridge, set and get commands to devices: not device output.
    if (rest === '' || rest.startsWith('bridge/') || /\/(set|get)(\/.*)?$/.test(rest)) return undefined;
    const availability = rest.endsWith('/availability');
    const deviceTopic = availability ? topic.slice(0, -'/availability'.length) : topic;
    const binding = byTopic.get(deviceTopic);
    if (binding && availability) {
      const state = readAvailability(payload);
      if (state === undefined) {
        countError('decode');
        return ctx.onDecoded(binding, { values: [], signals: [], errors: [`availability: "${payload.toString('utf8').slice(0, 40)}" is neither online nor offline`] });
      }
      return ctx.onDecoded(binding, { values: [], signals: [], errors: [], availability: state, availabilityText: `${bridge.id} reports the device ${state}` });
    }
    if (!binding) ctx.onUnknownDevice?.({ topic: deviceTopic, bridge: bridge.id, name: deviceTopic.slice(bridge.prefix.length + 1) });
    return undefined;
  };

  return {
    kind: 'mqtt',
    async start() {
      client = connectMqtt(ctx.brokerUrl, {
        ...mqttAuthOptions(ctx.brokerAuth),
        clientId: `cosafe-edge-mqtt-${ctx.sessionId ?? `${process.pid}-${Math.random().toString(16).slice(2, 8)}`}`,
        connectTimeout: 5000,
        clean: false,
        // Our own retries (refused filters) and renewals on connect, not mqtt.js' memory of what was granted.
        resubscribe: false,
      });
      client.on('connect', () => {
        // Heard again only once the broker grants the subscriptions anew (hearing()).
        for (const f of filters.values()) if (f.state === 'subscribed') f.state = 'subscribing';
        ctx.logger.info({ broker: ctx.brokerUrl, devices: byTopic.size, filters: [...filters.keys()] }, 'mqtt adapter connected');
        subscribe([...filters.keys()]);
      });
      client.on('error', (err) => {
        countError('connection');
        const hint = refusalHint(err, 'gateway.credentials');
        if (hint) ctx.logger.error({ err: err.message, hint }, 'the hub refused the mqtt adapter');
        else ctx.logger.warn({ err: err.message }, 'mqtt adapter connection error');
      });
      // The readings' transaction of the message being handled: its PUBACK waits for it (holdAcks).
      let stored: Promise<boolean> | undefined;
      client.handleMessage = (packet, done) => {
        // An alarm is acknowledged to its device only once it is safe (adapter.ts, onDecoded).
        const durable = onMessage(packet);
        stored = ctx.readingsStored?.();
        if (!durable) return done();
        void durable.then((ok) => {
          // The outbox refused its events: its PUBACK is refused too (holdAcks), and the broker delivers it again.
          if (!ok) stored = REFUSED;
          done();
        });
      };
      holdAcks(
        client,
        () => {
          const s = stored;
          stored = undefined;
          return s;
        },
        () => {
          countError('outbox');
          ctx.logger.error({ code: 'COSAFE_ERR_OUTBOX' }, 'the outbox refused what a message carried: it is not acknowledged, and the adapter reconnects so that the broker delivers it again');
        },
      );
    },
    async stop() {
      for (const f of filters.values()) clearTimeout(f.timer);
      const c = client;
      client = undefined;
      // The PUBACKs of messages whose readings are being written go out before the goodbye, or the broker sends
      // them again; not waiting long for an outbox that refuses them (they stay unacknowledged at the broker).
      if (c && ctx.readingsStored) await Promise.race([ctx.readingsStored(), delay(STOP_ACK_WAIT_MS, undefined, { ref: false })]);
      await c?.endAsync();
    },
    hearing() {
      if (!client?.connected) return new Set<string>();
      return new Set(ctx.devices.filter((d) => filters.get(coveringFilter(d, filters, bridges, ctx.site) ?? '')?.state === 'subscribed').map((d) => d.device.id));
    },
    health(): AdapterHealth {
      // One row per subscription: a refused one (no credential names it yet) is a link in trouble.
      const ports: PortHealth[] = [...filters].map(([filter, f]) => ({ port: filter, state: f.state === 'refused' ? 'refused: no credential' : f.state, lastValueAt: null, errors: {} }));
      return { kind: 'mqtt', connected: client?.connected ?? false, lastValueAt, errors: { ...errors }, ports };
    },
  };
}

/** mqtt.js' own send (client.js): the one way a PUBACK leaves. */
type SendPacket = (this: MqttClient, packet: Packet, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

/**
 * Holds each PUBACK until the readings of its message are in the outbox.
 * mqtt.js sends the PUBACK as soon as `handleMessage` calls back and handles
 * the next message only then, so waiting there for the outbox's transaction
 * would make it one transaction per message again (half of the gateway's CPU
 * with a thousand single-reading devices). Instead handleMessage calls back at
 * once and the PUBACK waits: `ticket` gives the promise of its message's
 * transaction (undefined: send now). They go out in the order of their
 * messages [MQTT-4.6.0-2]: transactions resolve in order, and the waiters of
 * one in the order they came. mqtt.js has no public way to delay an
 * acknowledgement; this wraps its internal `_sendPacket`, and fails at start
 * on a version without one rather than acknowledging early.
 *
 * A PUBACK whose connection is gone by then is not sent (the broker delivers
 * the message again on the next one, a persistent session); nor, when the
 * outbox refused what a message carried (its ticket says false), is any other
 * of that connection: `refused` is told, and the connection is dropped so that
 * the broker delivers them all again.
 */
function holdAcks(client: MqttClient, ticket: () => Promise<boolean> | undefined, refused: () => void): void {
  const internals = client as unknown as { _sendPacket?: SendPacket; stream?: { destroy(): void } };
  const send = internals._sendPacket;
  if (typeof send !== 'function') throw new Error('mqtt.js has no _sendPacket: the MQTT adapter cannot hold PUBACKs until readings are stored (check the mqtt version in package.json)');
  let spoiled: unknown;
  internals._sendPacket = function (this: MqttClient, packet, cb, ...rest) {
    const wait = packet.cmd === 'puback' ? ticket() : undefined;
    if (!wait) return send.call(this, packet, cb, ...rest);
    const stream = internals.stream;
    // mqtt.js goes on to the next message now.
    cb?.();
    void wait.then((ok) => {
      if (internals.stream !== stream || stream === spoiled || !client.connected) return;
      if (ok) return send.call(client, packet);
      spoiled = stream;
      refused();
      stream?.destroy();
    });
  };
}

/** Which of the adapter's subscriptions carries a device's topic (subscriptionFilters made them). */
function coveringFilter(d: DeviceBinding, filters: ReadonlyMap<string, unknown>, bridges: readonly BridgeConfig[], site: string | undefined): string | undefined {
  if (d.topic && filters.has(d.topic)) return d.topic;
  const bridge = d.bridge ?? bridges.find((b) => d.topic !== undefined && underPrefix(d.topic, b.prefix));
  if (bridge) return `${bridge.prefix}/#`;
  return site ? subscriptions.siteUplinks(site) : undefined;
}

/**
 * What the adapter subscribes to, each with the command that makes the broker
 * grant it: the site's uplinks (all of them, to hear devices not configured),
 * each bridge's prefix, and each device's own topic that neither covers.
 * Without a site (a single adapter under test), the devices' own topics.
 */
function subscriptionFilters(ctx: AdapterContext, bridges: readonly BridgeConfig[]): [string, string][] {
  const site = ctx.site ?? '<site>';
  const out = new Map<string, string>();
  if (ctx.site) out.set(subscriptions.siteUplinks(ctx.site), `the gateway's login must be a gateway credential of site ${ctx.site} (gateway.credentials)`);
  for (const b of bridges) out.set(`${b.prefix}/#`, `no bridge credential of site ${site} has prefix ${b.prefix}: cosafe credentials add --role bridge --site ${site} --prefix ${b.prefix}`);
  for (const d of ctx.devices) {
    if (!d.topic || d.bridge || out.has(d.topic) || bridges.some((b) => underPrefix(d.topic!, b.prefix))) continue;
    const uplink = parseTopic(d.topic);
    if (ctx.site && uplink?.kind === 'deviceUplink' && uplink.site === ctx.site) continue;
    out.set(d.topic, `no device credential of site ${site} has topic ${d.topic}: cosafe credentials add --role device --site ${site} --device ${d.device.id} --topic ${d.topic}`);
  }
  return [...out];
}
