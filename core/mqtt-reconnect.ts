import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Backoff, RECONNECT_BACKOFF, type BackoffPolicy } from './backoff.js';

/** One broker, or the brokers of a cluster (each reconnect tries the next one). */
export type BrokerUrls = string | readonly string[];

/** The part of mqtt.js' client this touches: its reconnect timer (private in its types, stable in 5.x). */
interface Reconnecting {
  options: IClientOptions;
  reconnectTimer: NodeJS.Timeout | null;
  connected: boolean;
  disconnecting: boolean;
  _setupReconnect(): void;
}

/**
 * A reconnect policy with a hurry: while `urgent()` says so (a fire alarm
 * waits to be sent), no wait is longer than random(0, `urgentCapMs`). Only
 * the few clients with an alarm to send hurry, so a fleet coming back after a
 * broker restart is still spread over the whole window.
 */
export interface ReconnectPolicy extends BackoffPolicy {
  urgent?: () => boolean;
  urgentCapMs?: number;
}

/** When each client's next attempt is due (for `hurryReconnect`). */
const dueAt = new WeakMap<MqttClient, { at: number; policy: ReconnectPolicy }>();

/**
 * Connects an mqtt.js client that reconnects with exponential backoff and full
 * jitter (core/backoff.ts) instead of mqtt.js' fixed `reconnectPeriod`, to one
 * broker or, given a list, to each in turn: a client whose broker died moves
 * to the next one of the cluster on its next attempt.
 *
 * Every cosafe client of the hub connects through here, so that a broker
 * restart in a cluster of thousands of gateways brings them back spread over
 * the backoff window (each login costs the broker a scrypt hash), not in one
 * wave per second.
 */
export function connectMqtt(urls: BrokerUrls, options: IClientOptions, policy: ReconnectPolicy = RECONNECT_BACKOFF): MqttClient {
  const list = typeof urls === 'string' ? [urls] : [...urls];
  if (list.length === 0) throw new Error('connectMqtt: no broker URL');
  const first = list[0]!;
  const client = list.length === 1 ? mqtt.connect(first, { ...options, reconnectPeriod: policy.baseMs }) : mqtt.connect(first, { ...options, reconnectPeriod: policy.baseMs, servers: brokerServers(list) });
  reconnectWithBackoff(client, policy);
  return client;
}

/** The part of mqtt.js' client that builds its connection (private in its types, stable in 5.x). */
interface Streaming {
  stream: unknown;
  streamBuilder: (client: MqttClient) => unknown;
}

/**
 * TCP_NODELAY on every connection the client makes, for the clients that send
 * alarms (the gateway's alarm lane, cloud-sync's dispatch). mqtt.js leaves
 * Nagle's algorithm on: a small packet written while an earlier one is not yet
 * acknowledged waits for that acknowledgement, so an event written right after
 * the gateway's status waited for the broker to store the status and answer
 * (or for a delayed ACK, up to 40 ms). The other clients keep it: their small
 * writes (a gateway's PUBACKs to a thousand devices) are better coalesced.
 * The broker's listeners set it on their side already.
 */
export function withoutNagle(client: MqttClient): MqttClient {
  const c = client as unknown as Streaming;
  const noDelay = <T>(stream: T): T => {
    (stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    return stream;
  };
  const build = c.streamBuilder;
  c.streamBuilder = (x) => noDelay(build(x));
  // The first connection is built inside mqtt.connect(), before this runs; it is not connected yet.
  noDelay(c.stream);
  return client;
}

/** `connectMqtt`, resolved on the first CONNACK that admits the client; the first error before it ends the client and rejects. */
export function connectMqttAsync(urls: BrokerUrls, options: IClientOptions, policy: BackoffPolicy = RECONNECT_BACKOFF): Promise<MqttClient> {
  const client = connectMqtt(urls, options, policy);
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      client.off('connect', onConnect);
      client.end(true);
      reject(err);
    };
    const onConnect = () => {
      client.off('error', onError);
      resolve(client);
    };
    client.once('connect', onConnect);
    client.once('error', onError);
  });
}

/**
 * Makes an mqtt.js client's reconnects follow `policy`: mqtt.js schedules a
 * reconnect on 'close' with `options.reconnectPeriod` (an interval that its
 * `connect()` clears, so it fires once); just before, the period is set to the
 * next jittered wait. A CONNACK that admits the client resets the backoff; a
 * refused one (bad credentials) keeps widening it.
 */
export function reconnectWithBackoff(client: MqttClient, policy: ReconnectPolicy = RECONNECT_BACKOFF): Backoff {
  const backoff = new Backoff(policy);
  const c = client as unknown as Reconnecting;
  const schedule = () => {
    if (c.options.reconnectPeriod === 0) return;
    // A timer set earlier (by mqtt.js' clean-up after a keep-alive timeout) would keep the old period.
    if (c.reconnectTimer) {
      clearInterval(c.reconnectTimer);
      c.reconnectTimer = null;
    }
    let wait = backoff.next();
    if (policy.urgentCapMs !== undefined && policy.urgent?.()) wait = Math.min(wait, urgentWait(policy));
    // 0 would turn reconnecting off in mqtt.js: at least 1 ms.
    c.options.reconnectPeriod = Math.max(1, wait);
    dueAt.set(client, { at: Date.now() + c.options.reconnectPeriod, policy });
  };
  // Before mqtt.js' own 'close' listener (registered in its constructor), which schedules the reconnect with the period set here.
  client.prependListener('close', schedule);
  client.on('connect', () => backoff.reset());
  return backoff;
}

function urgentWait(policy: ReconnectPolicy): number {
  return Math.floor((policy.random ?? Math.random)() * (policy.urgentCapMs ?? policy.capMs));
}

/**
 * Something urgent came up while the client waits to reconnect (a fire alarm
 * was raised while the hub was away): a wait due later than `urgentCapMs` from
 * now is cut to random(0, `urgentCapMs`). Without it the alarm would wait for
 * the backoff window of a long outage, up to `capMs` (30 s) after the hub is
 * back. Does nothing while connected or while an attempt is under way.
 */
export function hurryReconnect(client: MqttClient): void {
  const c = client as unknown as Reconnecting;
  const due = dueAt.get(client);
  if (!due || due.policy.urgentCapMs === undefined || c.connected || c.disconnecting || !c.reconnectTimer) return;
  if (due.at - Date.now() <= due.policy.urgentCapMs) return;
  clearInterval(c.reconnectTimer);
  c.reconnectTimer = null;
  c.options.reconnectPeriod = Math.max(1, urgentWait(due.policy));
  dueAt.set(client, { at: Date.now() + c.options.reconnectPeriod, policy: due.policy });
  // mqtt.js' own scheduling, with the period just set (the same path its 'close' listener takes).
  c._setupReconnect();
}

/** mqtt.js' `servers` option for a list of broker URLs. */
export function brokerServers(urls: readonly string[]): { host: string; port: number; protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' }[] {
  return urls.map((u) => {
    const url = new URL(u);
    const scheme = url.protocol.replace(':', '');
    const protocol = (scheme === 'tcp' ? 'mqtt' : scheme) as 'mqtt' | 'mqtts' | 'ws' | 'wss';
    const port = url.port ? Number(url.port) : protocol === 'mqtts' ? 8883 : protocol === 'mqtt' ? 1883 : protocol === 'wss' ? 443 : 80;
    return { host: url.hostname, port, protocol };
  });
}
