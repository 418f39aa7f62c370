import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { DecodeOutcome } from '../../device-profiles/codecs/index.js';
import type { DeviceBinding } from '../device-binding.js';

export interface AdapterHealth {
  kind: string;
  connected: boolean;
  /** Epoch ms of the last value from any device, or null before the first. */
  lastValueAt: number | null;
  errors: Record<string, number>;
}

/** Everything an adapter needs, in one object. */
export interface AdapterContext {
  logger: Logger;
  clock: Clock;
  devices: readonly DeviceBinding[];
  /** The broker to read device topics from (MQTT adapter). */
  brokerUrl: string;
  /** Stable for one gateway across restarts (`<site>-<gateway>`): names persistent sessions. */
  sessionId: string;
  /**
   * The one callback: what was decoded from one device's input (values, signals,
   * errors). When it returns, the readings and events are in the durable outbox.
   */
  onDecoded(binding: DeviceBinding, outcome: DecodeOutcome): void;
}

/** One interface for every transport. */
export interface Adapter {
  readonly kind: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  health(): AdapterHealth;
}

export type AdapterFactory = (context: AdapterContext) => Adapter;
