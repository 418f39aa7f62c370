import type { AlarmEvent, GatewayStatus, ReadingBatch } from '../../broker/contract/index.js';

/**
 * One consumer of the contract inside cloud-sync (InfluxDB or the local store,
 * fire-department dispatch, the gateway directory; later public alerts and
 * agency feeds). Cloud-sync starts the sinks in the order of its one list
 * (cloud-sync/cloud-sync.ts), hands every valid message to the sinks that have
 * a handler for it, and stops them in reverse order. A new consumer is a new
 * sink, not an edit of the others.
 *
 * Two lanes (ARCHITECTURE.md, delivery classes): `onEvent` and `onStatus` are
 * the alarm lane, `onBatch` the telemetry lane. They are fed by different MQTT
 * sessions, so an alarm never waits behind a batch. A handler of the alarm lane
 * must be quick: it records what it needs and does the slow part (a webhook,
 * a write to InfluxDB) after it returned.
 *
 * A handler that returns `true` has made what it got durable (or has no need
 * to); `false` means "not stored" (a disk failed): the message is not
 * acknowledged to the broker and is offered again, to that sink only, until
 * every sink has taken it.
 */
export interface Sink {
  /** For logs and health: `dispatch`, `store`, `gateways`, ... */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Alarm lane: an alarm, supervisory or trouble event (may be a resend: same event id). */
  onEvent?(event: AlarmEvent): boolean;
  /** Alarm lane: a gateway's retained status (online with its health, or its last will). */
  onStatus?(status: GatewayStatus): void;
  /** Telemetry lane: a batch of readings (a resend of a batch already taken is filtered out before). */
  onBatch?(batch: ReadingBatch): boolean;
}

export type Lane = 'alarm' | 'telemetry';
