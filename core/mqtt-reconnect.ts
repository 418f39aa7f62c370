import type { MqttClient } from 'mqtt';
import { Backoff, RECONNECT_BACKOFF, type BackoffPolicy } from './backoff.js';

/** The part of mqtt.js' client this touches: its reconnect period and its reconnect timer (private in its types, stable in 5.x). */
type Reconnecting = MqttClient & { reconnectTimer?: NodeJS.Timeout | null };

/**
 * Makes an mqtt.js client reconnect with exponential backoff and full jitter
 * (core/backoff.ts) instead of mqtt.js' fixed `reconnectPeriod`: before each
 * reconnect is scheduled (mqtt.js does it on 'close'), the period is set to the
 * next jittered wait, and the previous timer (an interval, which would keep the
 * old period) is dropped. A CONNACK that admits the client resets it.
 *
 * Until the first connection, the first wait is short: a client that starts
 * before its broker is up still connects within a second or so.
 */
export function reconnectWithBackoff(client: MqttClient, policy: BackoffPolicy = RECONNECT_BACKOFF): Backoff {
  const backoff = new Backoff(policy);
  const c = client as Reconnecting;
  const schedule = () => {
    if (c.options.reconnectPeriod === 0) return;
    if (c.reconnectTimer) {
      clearInterval(c.reconnectTimer);
      c.reconnectTimer = null;
    }
    // 0 would turn reconnecting off in mqtt.js: at least 1 ms.
    c.options.reconnectPeriod = Math.max(1, backoff.next());
  };
  // Before mqtt.js' own 'close' listener, which schedules the reconnect with the period set here.
  client.prependListener('close', schedule);
  client.on('connect', () => backoff.reset());
  return backoff;
}

/**
 * mqtt.js' `servers` option for a list of broker URLs (a cluster): each
 * reconnect tries the next one, so a client whose broker died moves to another.
 */
export function brokerServers(urls: readonly string[]): { host: string; port: number; protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' }[] {
  return urls.map((u) => {
    const url = new URL(u);
    const protocol = url.protocol.replace(':', '') as 'mqtt' | 'mqtts' | 'ws' | 'wss';
    const port = url.port ? Number(url.port) : protocol === 'mqtts' ? 8883 : protocol === 'mqtt' ? 1883 : protocol === 'wss' ? 443 : 80;
    return { host: url.hostname, port, protocol };
  });
}
