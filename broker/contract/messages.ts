import { z } from 'zod';
import { METRIC_NAME_PATTERN, SignalClass, UNIT_PATTERN } from '../../core/vocabulary.js';
import { MAX_EPOCH_MS, MAX_SEQ, MAX_TEXT, TEXT_FORBIDDEN, cleanText, conditionKey } from './bounds.js';
import { ID_PATTERN } from './topics.js';

export { SignalClass };

/**
 * Message schemas of the contract, declared once; the TypeScript types are
 * derived from them. Version 1: a breaking change gets a new topic root.
 *
 * The contract is a trust boundary: a gateway's credential does not make its
 * payloads trustworthy. Every string that becomes an InfluxDB tag or field, a
 * topic level or a page's text is bounded here (pattern, length, no control
 * characters), and so is every number that becomes a timestamp or a counter.
 */
const Id = z.string().regex(ID_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');
const MetricName = z.string().regex(METRIC_NAME_PATTERN, 'must be 1-64 lower-case letters, digits or "_", starting with a letter');
const Unit = z.string().regex(UNIT_PATTERN, 'must be 0-16 printable ASCII characters, none of space, \'"\', "\\", "," or "="');
/** Text a person reads (a panel's own words, a location): bounded, and nothing that can break a line or a page. */
const Text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !TEXT_FORBIDDEN.test(s), 'must not contain control characters (newline, tab, escape) or layout controls (line separators, bidi overrides)');
/**
 * Milliseconds since the Unix epoch, as the device (or gateway) stamped it:
 * from 1970 to 2100, a range every InfluxDB version stores (it ends in 2262).
 */
const EpochMs = z.number().int().nonnegative().max(MAX_EPOCH_MS, 'must be an epoch-milliseconds time before 2100');

export const Quality = z.enum(['good', 'bad', 'uncertain']);
export type Quality = z.infer<typeof Quality>;

export const Reading = z.object({
  device: Id,
  metric: MetricName,
  value: z.number().refine(Number.isFinite, 'must be a finite number'),
  unit: Unit,
  time: EpochMs,
  quality: Quality,
  profile: Id,
});
export type Reading = z.infer<typeof Reading>;

export const ReadingBatch = z.object({
  v: z.literal(1),
  gateway: Id,
  site: Id,
  /** Changes every time the gateway starts, so a restarted sequence is not taken for duplicates. */
  boot: Id,
  /** Per-gateway, per-boot sequence number: gaps and duplicates show in cloud-sync's counters. */
  seq: z.number().int().nonnegative().max(MAX_SEQ),
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
  profile: Id,
  /** Which condition of the device changed: a profile's condition id, or a signal key built at the edge (see `conditionKey`). */
  condition: Id,
  class: SignalClass,
  state: AlarmState,
  /** For conditions on readings: the reading that raised or cleared it. */
  metric: MetricName.optional(),
  value: z.number().refine(Number.isFinite, 'must be a finite number').optional(),
  unit: Unit.optional(),
  /** For signals a device reports itself (a panel's event line): its own words. */
  text: Text(MAX_TEXT).optional(),
  time: EpochMs,
  /** ISA-18.2: activated 3 or more times within 60 s. Still an alarm; also a maintenance problem. */
  chattering: z.boolean().optional(),
  location: Text(MAX_TEXT).optional(),
  /** The device or panel is being tested (a walk test, a test button): dispatched as usual, never made public. */
  test: z.boolean().optional(),
});
export type AlarmEvent = z.infer<typeof AlarmEvent>;

/** Error counters by kind (the kind may name an OPC-UA node id): shown on status pages. */
const Counts = z.record(Text(256), z.number());
/** A short machine word shown on a status page (a transport kind, a link state). */
const Word = Text(64);
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
  messageId: Text(200).pipe(z.string().min(1)),
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
  operator: Text(100).optional(),
  note: Text(MAX_TEXT).optional(),
  /**
   * The department's word on the public: true once it confirmed the danger and
   * residents should be warned, false to end a public warning. Sent with the
   * acknowledgement, or again later on the same topic.
   */
  warnPublic: z.boolean().optional(),
  identity: z.object({ id: Text(128).pipe(z.string().min(1)), role: Word.pipe(z.string().min(1)), district: Id.optional() }).strict().optional(),
});
export type DispatchAck = z.infer<typeof DispatchAck>;

/** Tells a gateway (on its `commands/alarm-ack` topic) that a fire department acknowledged one of its alarms. */
export const AlarmAckCommand = z.object({
  v: z.literal(1),
  alarmId: z.string().regex(/^alm_[0-9a-f]{24}$/),
  eventId: z.string().regex(/^evt_[0-9a-f]{32}$/),
  site: Id,
  device: Id,
  condition: Id,
  acknowledgedBy: Text(128).pipe(z.string().min(1)),
  operator: Text(100).optional(),
  channel: Word,
  at: EpochMs,
});
export type AlarmAckCommand = z.infer<typeof AlarmAckCommand>;



const DeviceHealth = z.object({ id: Id, profile: Id, transport: Word, lastSeen: EpochMs.nullable(), commLost: z.boolean(), location: Text(MAX_TEXT).optional() });
export type DeviceHealth = z.infer<typeof DeviceHealth>;

/** What a building owner needs to see that the devices work: per transport, per port or unit, per device. */
export const GatewayHealth = z.object({
  at: EpochMs,
  adapters: z.array(
    z.object({
      kind: Word,
      connected: z.boolean(),
      lastValueAt: EpochMs.nullable(),
      errors: Counts,
      ports: z
        .array(
          z.object({
            /** A serial port path or an opc.tcp:// URL. */
            port: Text(512),
            /** The device ids on it, comma-separated. */
            device: Text(4096).optional(),
            state: Word,
            backoffMs: z.number().optional(),
            lastValueAt: EpochMs.nullable(),
            errors: Counts,
            /** serial-lines: the last line no rule of the profile knew (also counted in errors.unrecognized). */
            lastUnrecognized: z.object({ line: Text(120), at: EpochMs }).optional(),
          }),
        )
        .optional(),
    }),
  ),
  /**
   * Every configured device, in a full report: the retained status, on every
   * connect, when the list changes and every few minutes. A periodic report
   * carries `lastSeenAgo` and `devicesLost` instead: with 1,000 devices the list
   * is 115 KB, and every 5 s it would share the hub's event loop with the
   * alarms (and a cellular link's data plan).
   */
  devices: z.array(DeviceHealth).optional(),
  /** Names the device list (ids, profiles, transports, locations, in order): the same list, the same name. */
  deviceList: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  /**
   * A periodic report: when each device of the list `deviceList` names was last
   * heard, in milliseconds before `at` (null: not yet), in the list's order.
   */
  lastSeenAgo: z.array(z.number().int().nonnegative().nullable()).optional(),
  /** A periodic report: the devices whose communication is lost, by their place in that list (absent: as the last report said). */
  devicesLost: z.array(z.number().int().nonnegative()).optional(),
  /** `device/condition` of every active condition. */
  activeConditions: z.array(Text(129)),
  /** Devices heard on the broker but not configured, the most recently heard first (at most 20), so a person can add them. */
  unknownDevices: z
    .array(
      z.object({
        topic: Text(256),
        /** A contract uplink: the device id in its topic. */
        device: Id.optional(),
        /** Under a bridge's prefix: the bridge, and the device's name there. */
        bridge: Id.optional(),
        name: Text(128).optional(),
        messages: z.number().int().nonnegative(),
        firstHeard: EpochMs,
        lastHeard: EpochMs,
      }),
    )
    .max(20)
    .optional(),
  /** The gateway's durable outbox: what waits for the hub, and whether the hub is there. */
  outbox: z
    .object({
      connected: z.boolean(),
      /** Each lane's own connection to the hub: alarms (events, status) and telemetry (readings). */
      links: z.object({ alarm: z.boolean(), telemetry: z.boolean() }).optional(),
      error: Text(1000).optional(),
      events: z.number(),
      readings: z.number(),
      openReadings: z.number(),
      inFlight: z.number(),
    })
    .optional(),
}).refine((h) => h.devices !== undefined || (h.deviceList !== undefined && h.lastSeenAgo !== undefined), 'must carry the devices, or deviceList with lastSeenAgo');
export type GatewayHealth = z.infer<typeof GatewayHealth>;

export const GatewayStatus = z.object({
  v: z.literal(1),
  gateway: Id,
  site: Id,
  state: z.enum(['online', 'offline']),
  boot: Id,
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
  const json = parseJson(payload);
  if (!json.ok) return json;
  return check(schema, json.value);
}

/**
 * An alarm event as cloud-sync takes it. A fire alarm is never refused for a
 * cosmetic field: when the event breaks the contract only in what a device
 * said about itself (its `text`, `location`, `unit`, `metric`, `profile`, or a
 * condition key an older gateway built from a panel line), those fields are
 * cleaned as the edge does now (`cleanText`, `conditionKey`) or dropped, and the
 * event goes on, with `repaired` naming what was changed (to be counted and
 * logged). What identifies and routes the alarm (event id, site, gateway,
 * device, class, state, time) is never guessed: an event wrong in those is
 * refused as before.
 */
export function decodeAlarmEvent(payload: Buffer | string): DecodeResult<AlarmEvent> & { repaired?: string[] } {
  const json = parseJson(payload);
  if (!json.ok) return json;
  const first = check(AlarmEvent, json.value);
  if (first.ok || typeof json.value !== 'object' || json.value === null || Array.isArray(json.value)) return first;
  const e = { ...(json.value as Record<string, unknown>) };
  const repaired: string[] = [];
  for (const key of ['text', 'location'] as const) {
    if (e[key] === undefined || AlarmEvent.shape[key].safeParse(e[key]).success) continue;
    if (typeof e[key] === 'string') e[key] = cleanText(e[key]);
    else delete e[key];
    repaired.push(key);
  }
  for (const key of ['condition', 'profile'] as const) {
    if (typeof e[key] === 'string' && !AlarmEvent.shape[key].safeParse(e[key]).success && e[key].length > 0) {
      e[key] = conditionKey(cleanText(e[key], 1000));
      repaired.push(key);
    }
  }
  for (const key of ['metric', 'unit', 'value', 'chattering', 'test'] as const) {
    if (e[key] !== undefined && !AlarmEvent.shape[key].safeParse(e[key]).success) {
      delete e[key];
      repaired.push(key);
    }
  }
  if (repaired.length === 0) return first;
  const second = check(AlarmEvent, e);
  return second.ok ? { ...second, repaired } : first;
}

function parseJson(payload: Buffer | string): DecodeResult<unknown> {
  try {
    return { ok: true, value: JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) };
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
}

function check<S extends z.ZodType>(schema: S, json: unknown): DecodeResult<z.output<S>> {
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
