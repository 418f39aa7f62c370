import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { DecodeOutcome } from '../../device-profiles/codecs/index.js';
import type { BridgeConfig, DeviceBinding } from '../device-binding.js';

/** One connection of an adapter (an OPC-UA endpoint, a serial port), for status pages. */
export interface AdapterEndpointHealth {
  /** Where the adapter connects: an opc.tcp:// URL, a serial port path. */
  address: string;
  /** The adapter's own state names, e.g. connecting, connected, reconnecting, backoff. */
  state: string;
  /** Epoch ms of the last state change. */
  since: number;
  /** Ids of the devices read over this connection. */
  devices: string[];
  /** What went wrong last, for a person to act on. */
  lastError?: string;
  /** When retrying: the delay before the next attempt. */
  retryInMs?: number;
}

export interface AdapterHealth {
  kind: string;
  connected: boolean;
  /** Epoch ms of the last value from any device, or null before the first. */
  lastValueAt: number | null;
  errors: Record<string, number>;
  /** Per port, endpoint or unit: its link state and backoff, so a person sees which one is in trouble. */
  ports?: PortHealth[];
  /** Per connection, in the adapter's own detail (OPC-UA: security, reconnects, bad nodes). */
  endpoints?: AdapterEndpointHealth[];
}

export interface PortHealth {
  port: string;
  device?: string;
  state: string;
  backoffMs?: number;
  lastValueAt: number | null;
  errors: Record<string, number>;
  /** serial-lines: the last line the profile did not know, and when it came. */
  lastUnrecognized?: { line: string; at: number };
}

/** A device heard on the broker that no configured device matches: what a person needs to add it. */
export interface HeardDevice {
  topic: string;
  /** A contract uplink: the device id in its topic. */
  device?: string;
  /** Under a bridge's prefix: the bridge, and the device's name there (zigbee2mqtt's friendly name). */
  bridge?: string;
  name?: string;
}

/** Everything an adapter needs, in one object. */
export interface AdapterContext {
  logger: Logger;
  clock: Clock;
  devices: readonly DeviceBinding[];
  /** The broker to read device topics from (MQTT adapter). */
  brokerUrl: BrokerUrls;
  /** The gateway's login to that broker (MQTT adapter). */
  brokerAuth?: MqttClientAuth;
  /** Where the adapter may keep state that survives a restart (the OPC-UA client's certificate store); the gateway's data dir. */
  stateDir?: string;
  /** Stable for one gateway across restarts (`<site>-<gateway>`): names persistent sessions. */
  sessionId?: string;
  /** MQTT: the gateway's site; the adapter reads every device uplink of it, to hear devices not configured too. */
  site?: string;
  /** MQTT: bridges (zigbee2mqtt-style) whose whole prefix the adapter reads. */
  bridges?: readonly BridgeConfig[];
  /** MQTT: a message from a device that is not configured (acknowledged, not decoded); the gateway counts and shows it. */
  onUnknownDevice?(heard: HeardDevice): void;
  /**
   * The one callback: what was decoded from one device's input (values, signals,
   * errors). When it returns, the events are in the durable outbox (safe from a
   * crash of the process), and the readings are taken: they are written at the
   * end of this turn of the event loop with the others of it, in one
   * transaction (`readingsStored`). When it raised events, the promise resolves
   * true once they are flushed to the disk too (`gateway.outbox.fsyncEvents`):
   * an adapter that acknowledges its device does so then; false when the
   * outbox refused them: such an adapter does not acknowledge the input, so
   * that its device or broker sends it again.
   */
  onDecoded(binding: DeviceBinding, outcome: DecodeOutcome): Promise<boolean> | undefined;
  /**
   * Resolves once the readings of every input handed to onDecoded so far are in
   * the outbox (true), or the disk refused them (false: not accepted). An
   * adapter that acknowledges its device (MQTT's PUBACK) waits for it. Without
   * it (a harness that keeps what it is given), they are taken at once.
   */
  readingsStored?(): Promise<boolean>;
}

/** What onDecoded answers when the outbox refused what an input raised (and an acknowledging adapter's ticket for it). */
export const REFUSED: Promise<boolean> = Promise.resolve(false);

/** One interface for every transport. */
export interface Adapter {
  readonly kind: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  health(): AdapterHealth;
  /**
   * Ids of the devices it can hear now: MQTT connected to the device broker
   * with the subscription that carries them granted, a serial or Modbus port
   * open, an OPC-UA session up. Supervision counts a device's silence only
   * from then (edge/supervision.ts). Without it: all of its devices, always.
   */
  hearing?(): ReadonlySet<string>;
}

export type AdapterFactory = (context: AdapterContext) => Adapter;
