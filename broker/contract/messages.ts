import { z } from 'zod';
import { SignalClass } from '../../core/vocabulary.js';
import { ID_PATTERN } from './topics.js';

export { SignalClass };

/**
 * Message schemas of the contract, declared once; the TypeScript types are
 * derived from them. Version 1: a breaking change gets a new topic root.
 */
const Id = z.string().regex(ID_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');
/** Milliseconds since the Unix epoch, as the device (or gateway) stamped it. */
const EpochMs = z.number().int().nonnegative();

export const Quality = z.enum(['good', 'bad', 'uncertain']);
export type Quality = z.infer<typeof Quality>;

export const Reading = z.object({
  device: Id,
  metric: z.string().min(1).max(64),
  value: z.number().refine(Number.isFinite, 'must be a finite number'),
  unit: z.string().max(16),
  time: EpochMs,
  quality: Quality,
  profile: z.string().min(1).max(64),
});
export type Reading = z.infer<typeof Reading>;

export const ReadingBatch = z.object({
  v: z.literal(1),
  gateway: Id,
  site: Id,
  /** Changes every time the gateway starts, so a restarted sequence is not taken for duplicates. */
  boot: z.string().min(1).max(64),
  /** Per-gateway, per-boot sequence number: gaps and duplicates show in cloud-sync's counters. */
  seq: z.number().int().nonnegative(),
  sentAt: EpochMs,
  readings: z.array(Reading).min(1).max(10_000),
});
export type ReadingBatch = z.infer<typeof ReadingBatch>;

export const AlarmState = z.enum(['active', 'cleared']);
export type AlarmState = z.infer<typeof AlarmState>;

export const AlarmEvent = z.object({
  v: z.literal(1),
  /** Stable id derived from what happened, so a resend is recognised anywhere down the line. */
  eventId: z.string().regex(/^evt_[0-9a-f]{32}$/),
  gateway: Id,
  site: Id,
  device: Id,
  profile: z.string().min(1).max(64),
  condition: z.string().min(1).max(64),
  class: SignalClass,
  state: AlarmState,
  /** For conditions on readings: the reading that raised or cleared it. */
  metric: z.string().min(1).max(64).optional(),
  value: z.number().optional(),
  unit: z.string().max(16).optional(),
  /** For signals a device reports itself (a panel's event line): its own words. */
  text: z.string().max(200).optional(),
  time: EpochMs,
  /** ISA-18.2: activated 3 or more times within 60 s. Still an alarm; also a maintenance problem. */
  chattering: z.boolean().optional(),
  location: z.string().max(200).optional(),
  /** The device or panel is being tested (a walk test, a test button): dispatched as usual, never made public. */
  test: z.boolean().optional(),
});
export type AlarmEvent = z.infer<typeof AlarmEvent>;

/**
 * ISA-18.2 alarm states as the hub keeps them (the alarm state transition
 * diagram, states A-D): normal, active and unacknowledged, active and
 * acknowledged, returned to normal but not yet acknowledged.
 */
export const AlarmLifecycleState = z.enum(['normal', 'active-unacknowledged', 'active-acknowledged', 'returned-unacknowledged']);
export type AlarmLifecycleState = z.infer<typeof AlarmLifecycleState>;

/** CAP 1.2 §3.2.1 msgType of the message a dispatch carries. */
export const CapMsgType = z.enum(['Alert', 'Update', 'Cancel']);
export type CapMsgType = z.infer<typeof CapMsgType>;

/**
 * What a fire department receives, on `dispatch/<district>/alarms/<site>` and as
 * the `data` of a webhook: the event's own fields (as before), the alarm it
 * belongs to, and the CAP 1.2 message. To acknowledge, publish on
 * `dispatch/<district>/acks/<eventId>` with this eventId.
 */
export const DispatchMessage = AlarmEvent.extend({
  /** The hub's alarm: one per site, device and condition. */
  alarmId: z.string().regex(/^alm_[0-9a-f]{24}$/),
  /** The CAP identifier of this message (also the webhook-id). */
  messageId: z.string().min(1).max(200),
  msgType: CapMsgType,
  /** The district the registry gives the site; absent when the site is not registered. */
  district: Id.optional(),
  alarmState: AlarmLifecycleState,
  /** 0 for the first delivery; n for the n-th escalation step. */
  escalation: z.number().int().nonnegative(),
  /** The CAP 1.2 alert, XML. */
  cap: z.string().min(1),
});
export type DispatchMessage = z.infer<typeof DispatchMessage>;

/**
 * A fire department's acknowledgement on `dispatch/<district>/acks/<eventId>`.
 * `operator` and `note` are the department's own words; who acknowledged is
 * what the broker stamps in `identity` from the publisher's login, whatever the
 * payload claimed.
 */
export const DispatchAck = z.object({
  v: z.literal(1),
  operator: z.string().max(100).optional(),
  note: z.string().max(200).optional(),
  /**
   * The department's word on the public: true once it confirmed the danger and
   * residents should be warned, false to end a public warning. Sent with the
   * acknowledgement, or again later on the same topic.
   */
  warnPublic: z.boolean().optional(),
  identity: z.object({ id: z.string().min(1).max(128), role: z.string().min(1).max(32), district: Id.optional() }).strict().optional(),
});
export type DispatchAck = z.infer<typeof DispatchAck>;

/** Tells a gateway (on its `commands/alarm-ack` topic) that a fire department acknowledged one of its alarms. */
export const AlarmAckCommand = z.object({
  v: z.literal(1),
  alarmId: z.string(),
  eventId: z.string(),
  site: Id,
  device: Id,
  condition: z.string().min(1).max(64),
  acknowledgedBy: z.string().min(1).max(128),
  operator: z.string().max(100).optional(),
  channel: z.string().max(16),
  at: EpochMs,
});
export type AlarmAckCommand = z.infer<typeof AlarmAckCommand>;

const Counts = z.record(z.string(), z.number());

/** What a building owner needs to see that the devices work: per transport, per port or unit, per device. */
export const GatewayHealth = z.object({
  at: EpochMs,
  adapters: z.array(
    z.object({
      kind: z.string(),
      connected: z.boolean(),
      lastValueAt: EpochMs.nullable(),
      errors: Counts,
      ports: z
        .array(z.object({ port: z.string(), device: z.string().optional(), state: z.string(), backoffMs: z.number().optional(), lastValueAt: EpochMs.nullable(), errors: Counts }))
        .optional(),
    }),
  ),
  devices: z.array(z.object({ id: Id, profile: z.string(), transport: z.string(), lastSeen: EpochMs.nullable(), commLost: z.boolean() })),
  activeConditions: z.array(z.string()),
  /** The gateway's durable outbox: what waits for the hub, and whether the hub is there. */
  outbox: z
    .object({ connected: z.boolean(), error: z.string().optional(), events: z.number(), readings: z.number(), openReadings: z.number(), inFlight: z.number() })
    .optional(),
});
export type GatewayHealth = z.infer<typeof GatewayHealth>;

export const GatewayStatus = z.object({
  v: z.literal(1),
  gateway: Id,
  site: Id,
  state: z.enum(['online', 'offline']),
  boot: z.string().min(1).max(64),
  since: EpochMs,
  /** Refreshed every few seconds while online; absent from the last will. */
  health: GatewayHealth.optional(),
});
export type GatewayStatus = z.infer<typeof GatewayStatus>;

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Parses a payload from the broker. Never throws: bad input from the network is
 * an operational fault to count, not a bug.
 */
export function decodeMessage<S extends z.ZodType>(schema: S, payload: Buffer | string): DecodeResult<z.output<S>> {
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    error: result.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; '),
  };
}
