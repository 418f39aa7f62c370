import { z } from 'zod';
import { METRIC_NAME_PATTERN, SignalClass, UNIT_PATTERN, metricUnits } from '../core/vocabulary.js';

/**
 * The device profile: a device model described as data. One declaration; the
 * TypeScript types and the JSON Schema for editors (profile.schema.json) are
 * derived from it.
 *
 * A profile names the device, its transport, its data points (what is measured,
 * in which unit, its valid range, and how to read it on that transport), how
 * often it must report (supervision), and the conditions that raise alarm,
 * supervisory and trouble signals.
 */

const Id = z.string().regex(/^[a-z][a-z0-9-]{1,63}$/, 'must be lower-case kebab-case, 2-64 characters');

const JsonPath = z
  .string()
  .regex(/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*|\[\d+\])*$/, 'must be a dotted path such as "data.temp" or "values[0]"');

/** A regular expression given as text; checked to compile, so a typo fails validation, not decoding. */
const Pattern = z.string().superRefine((s, ctx) => {
  try {
    new RegExp(s, 'u');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
  }
});

/**
 * The named groups of a pattern, or undefined when it does not compile.
 * An empty alternative matches the empty string, and `groups` then lists every
 * named group of the pattern (each undefined): exact, with no parsing of ours.
 */
export function namedGroups(pattern: string): Set<string> | undefined {
  try {
    return new Set(Object.keys(new RegExp(`${pattern}|`, 'u').exec('')?.groups ?? {}));
  } catch {
    return undefined;
  }
}

/** Each of `names` must be a named group of `pattern`; otherwise it would read as empty, silently (every fault one key, one reset clearing them all). */
function requireGroups(pattern: string, names: readonly string[], path: (string | number)[], use: (name: string) => string, ctx: z.RefinementCtx): void {
  const groups = namedGroups(pattern);
  if (!groups) return; // the pattern's own error is reported where it is
  for (const name of names) {
    if (groups.has(name)) continue;
    const known = groups.size ? `its named groups: ${[...groups].map((g) => `"${g}"`).join(', ')}` : 'it has no named groups';
    ctx.addIssue({ code: 'custom', path, message: `${use(name)}, but the pattern has no group "${name}" (${known}); add (?<${name}>...) to it` });
  }
}

/** What any metric name must look like (core/vocabulary.ts); it becomes a tag and a label. */
const MetricName = z.string().regex(METRIC_NAME_PATTERN, 'must be snake_case: a lower-case letter, then lower-case letters, digits or "_" (at most 64)');

/** UCUM-style unit codes (core/vocabulary.ts): `Cel`, not `°C`. */
const Unit = z.string().regex(UNIT_PATTERN, 'must be a unit code of at most 16 printable ASCII characters, without space, ", \\, "," or "=" (UCUM style: Cel, %RH, L/min; see docs/profiles.md)');

/** Metrics one profile may add to the vocabulary: each is a tag value in the time series, so their number stays small. */
export const MAX_EXTRA_METRICS = 8;

/* ---------------------------------------------------------------- reading */

const PointBase = {
  metric: MetricName.describe('What is measured: a metric of the vocabulary (docs/profiles.md), or one the profile declares under "metrics"'),
  unit: Unit.describe('Unit of the decoded value; must be the unit of the metric'),
  type: z.enum(['number', 'boolean']).default('number').describe('Booleans are published as 1 (true) and 0 (false)'),
  range: z
    .tuple([z.number(), z.number()])
    .optional()
    .describe('Valid range of the decoded value; a reading outside is kept with quality "bad" and counted'),
  scale: z.number().default(1).describe('Numbers: decoded value = raw * scale + offset'),
  offset: z.number().default(0),
  invert: z.boolean().default(false).describe('Booleans: true reads as 0 (a normally-closed contact)'),
};

export const MqttRead = z.object({ json: JsonPath.describe("Where the value sits in the device's JSON payload") }).strict();

export const ModbusRead = z
  .object({
    function: z.enum(['holding', 'input', 'coil', 'discrete']).describe('Register table: holding (FC 3), input (FC 4), coil (FC 1), discrete input (FC 2)'),
    address: z.number().int().min(0).max(65_535).describe('0-based register or bit address (protocol address, not the 4xxxx label)'),
    dataType: z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32', 'bool']).default('uint16'),
    /** Modbus has no standard for 32-bit values; vendors differ. */
    wordOrder: z.enum(['big', 'little']).default('big').describe('For 32-bit types: big = high word first (AB CD), little = low word first (CD AB)'),
    bit: z.number().int().min(0).max(15).optional().describe('For a flag packed in a register: the bit number (0 = least significant)'),
  })
  .strict();

export const OpcuaRead = z
  .object({
    nodeId: z.string().regex(/^(ns=\d+;)?[isgb]=.+$/, 'must be an OPC-UA NodeId such as "ns=2;s=Pump.Pressure"'),
    samplingIntervalMs: z.number().int().min(0).default(1000),
    deadband: z
      .object({ type: z.enum(['absolute', 'percent']), value: z.number().nonnegative() })
      .strict()
      .optional()
      .describe('Report a change only beyond this deadband (OPC-UA Part 4 §7.22.2 DataChangeFilter)'),
  })
  .strict();

export const SerialRead = z
  .object({
    line: Pattern.describe('Pattern with a named group "value" that captures the number'),
  })
  .strict()
  .superRefine((r, ctx) => requireGroups(r.line, ['value'], ['line'], () => 'the value is read from a group "value"', ctx));

// The unit is checked against the metric by the profile, which knows its own extra metrics.
const point = <R extends z.ZodType>(read: R) =>
  z
    .object({ ...PointBase, read })
    .strict()
    .superRefine((p, ctx) => {
      if (p.range && p.range[0] >= p.range[1]) ctx.addIssue({ code: 'custom', path: ['range'], message: 'the low end must be below the high end' });
      if (p.type === 'number' && !p.range) ctx.addIssue({ code: 'custom', path: ['range'], message: 'a numeric data point needs a valid range' });
    });

export const MqttPoint = point(MqttRead);
export const ModbusPoint = point(ModbusRead);
export const OpcuaPoint = point(OpcuaRead);
export const SerialPoint = point(SerialRead);
export type DataPoint = z.infer<typeof MqttPoint> | z.infer<typeof ModbusPoint> | z.infer<typeof OpcuaPoint> | z.infer<typeof SerialPoint>;

/* ------------------------------------------------------------- conditions */

const Threshold = z
  .object({
    above: z.number().optional().describe('Raised when the value goes above this limit'),
    below: z.number().optional().describe('Raised when the value goes below this limit'),
    deadband: z.number().nonnegative().default(0).describe('Hysteresis: clears only once the value is this far back inside the limit'),
  })
  .strict()
  .refine((t) => (t.above === undefined) !== (t.below === undefined), 'give exactly one of "above" or "below"');

const Equals = z.object({ equals: z.union([z.boolean(), z.number()]).describe('Raised while the value equals this') }).strict();

const InStates = z.object({ in: z.array(z.number()).min(1).describe('Raised while the value is one of these states') }).strict();

const RateOfRise = z
  .object({
    riseBy: z.number().positive().describe('Raised when the value rises by at least this much ...'),
    withinS: z.number().positive().max(3600).describe('... within this many seconds (heat detectors: EN 54-5 class R)'),
  })
  .strict();

export const Condition = z
  .object({
    id: Id.describe('Unique within the profile; part of the event key'),
    class: SignalClass,
    metric: MetricName.describe('The data point it watches'),
    when: z.union([Equals, InStates, RateOfRise, Threshold]),
    onDelayS: z.number().nonnegative().default(0).describe('The condition must hold this long before it is raised (filters transients)'),
    offDelayS: z.number().nonnegative().default(0).describe('The condition must be gone this long before it clears (no flapping)'),
  })
  .strict();
export type Condition = z.infer<typeof Condition>;
export type ConditionRule = Condition['when'];

/* ---------------------------------------------------- panel signal lines */

/** What a matched panel line signals. `{name}` in `key` is replaced by the named group. */
const Signal = z
  .object({
    key: z.string().min(1).max(64).describe('Identifies the signal, e.g. "fire-zone-{zone}"; its restore uses the same key'),
    class: SignalClass,
    state: z.enum(['active', 'cleared']),
  })
  .strict();

/** `{zone}` in a signal key: the groups it names. */
export const keyGroups = (key: string): string[] => [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);

/** Where the panel's own time of the event sits in its line. */
const LineTime = z
  .object({
    group: z.string().min(1).describe('The named group of `match` that captures the time, e.g. "time" for (?<time>\\S+ \\S+)'),
    format: z
      .string()
      .min(1)
      .max(64)
      .describe('How the panel writes it, in Luxon tokens: dd/MM/yy HH:mm:ss, yyyy-MM-dd HH:mm, dd-MMM-yy HH:mm:ss (MMM = JAN...). The zone is the device\'s timeZone'),
  })
  .strict();

const ruleBase = {
  time: LineTime.optional().describe("The event time from the panel's line; without it (or when it does not parse, or the panel's clock is far off), the time the line arrived"),
};

export const LineRule = z.union([
  z
    .object({ match: Pattern, ...ruleBase, signal: Signal })
    .strict()
    .superRefine((r, ctx) => requireGroups(r.match, keyGroups(r.signal.key), ['signal', 'key'], (g) => `the key uses {${g}}`, ctx)),
  z
    .object({
      match: Pattern.describe('Pattern with named groups "qualifier", "code" (3 digits) and optionally "zone"'),
      ...ruleBase,
      contactId: z.literal(true).describe('SIA DC-05 Contact ID: qualifier 1 = new event, 3 = restore, 6 = status'),
    })
    .strict()
    .superRefine((r, ctx) => requireGroups(r.match, ['qualifier', 'code'], ['match'], (g) => `Contact ID reads a group "${g}"`, ctx)),
  z
    .object({ match: Pattern, ...ruleBase, resetAll: z.literal(true).describe('A panel reset or "system normal": every active signal of the device clears') })
    .strict(),
]).superRefine((r, ctx) => {
  if (r.time) requireGroups(r.match, [r.time.group], ['time', 'group'], (g) => `the time is read from a group "${g}"`, ctx);
});
export type LineRule = z.infer<typeof LineRule>;

/* --------------------------------------------------------------- profile */

const Sample = z
  .object({
    description: z.string().optional(),
    /** Per transport: a JSON payload (mqtt), a line (serial-lines), registers by table and address (modbus-rtu), values by node id (opcua). */
    input: z.union([z.string(), z.record(z.string(), z.unknown())]),
    expect: z
      .object({
        readings: z.array(z.object({ metric: MetricName, value: z.number(), quality: z.enum(['good', 'bad']).default('good') }).strict()).default([]),
        signals: z
          .array(
            z
              .object({
                key: z.string(),
                class: SignalClass,
                state: z.enum(['active', 'cleared']),
                time: z.iso.datetime({ offset: true }).optional().describe("serial-lines: the event time read from the line (samples decode in UTC), e.g. 2025-11-26T10:31:05Z"),
              })
              .strict(),
          )
          .default([]),
        errors: z.number().int().nonnegative().default(0).describe('How many decode errors the input gives'),
        line: z
          .enum(['recognized', 'ignored', 'unrecognized'])
          .optional()
          .describe('serial-lines: whether a rule or point knows the line, an `ignore` pattern covers it, or neither (counted as unrecognized)'),
      })
      .strict(),
  })
  .strict();

const Supervision = z
  .object({
    reportIntervalS: z.number().positive().describe('How often the device reports (or is polled)'),
    silentAfterS: z.number().positive().optional().describe('Raise "communication lost" trouble after this long without a reading; default 3 x reportIntervalS'),
  })
  .strict();

const ProfileBase = {
  id: Id,
  vendor: z.string().min(1),
  model: z.string().min(1),
  description: z.string().min(1),
  version: z.number().int().positive().describe('Bump when the profile changes meaning'),
  supervision: Supervision.optional(),
  metrics: z
    .record(MetricName, z.object({ unit: Unit, description: z.string().max(200).optional() }).strict())
    .default({})
    .describe(`Metrics this profile reads beyond the vocabulary (e.g. linkquality: {unit: "1"}), at most ${MAX_EXTRA_METRICS}; a vocabulary metric keeps its own unit`),
  conditions: z.array(Condition).default([]),
  samples: z.array(Sample).default([]).describe('Recorded device output with the expected result; a test decodes every one'),
};

/** Serial line framing; the default parity differs by protocol. */
const serialFraming = (parity: 'none' | 'even') => ({
  baudRate: z.number().int().positive().default(9600),
  dataBits: z.literal([7, 8]).default(8),
  parity: z.enum(['none', 'even', 'odd']).default(parity),
  stopBits: z.literal([1, 2]).default(1),
});

export const MqttProfile = z
  .object({
    ...ProfileBase,
    transport: z.literal('mqtt'),
    time: JsonPath.optional().describe("Where the device's own timestamp (epoch ms) sits; absent: the gateway's receive time"),
    points: z.array(MqttPoint).min(1),
  })
  .strict();

export const ModbusProfile = z
  .object({
    ...ProfileBase,
    transport: z.literal('modbus-rtu'),
    modbus: z
      .object({
        unitId: z.number().int().min(1).max(247).optional().describe('Default unit (slave) id; the site config may set it per device'),
        pollIntervalMs: z.number().int().min(100).default(1000),
        timeoutMs: z.number().int().min(10).default(500).describe('How long to wait for this unit to answer'),
        frameGapMs: z.number().min(0).max(1000).optional().describe('Silence between frames on the bus; default 3.5 character times, at least 5 ms'),
      })
      .strict()
      .prefault({}),
    // Modbus over Serial Line §2.5.1: the default framing is even parity.
    serial: z.object(serialFraming('even')).strict().prefault({}),
    points: z.array(ModbusPoint).min(1),
  })
  .strict();

export const OpcuaProfile = z
  .object({
    ...ProfileBase,
    transport: z.literal('opcua'),
    points: z.array(OpcuaPoint).min(1),
  })
  .strict();

export const SerialProfile = z
  .object({
    ...ProfileBase,
    transport: z.literal('serial-lines'),
    serial: z
      .object({
        ...serialFraming('none'),
        maxLineLength: z.number().int().min(16).max(4096).default(256).describe('Longer lines are noise (a wrong baud rate, a stuck line)'),
      })
      .strict()
      .prefault({}),
    lines: z.array(LineRule).min(1).describe('Tried in order; the first that matches wins'),
    ignore: z.array(Pattern).default([]).describe('Lines that carry nothing (headers, blank separators); not counted as unrecognized'),
    points: z.array(SerialPoint).default([]),
  })
  .strict();

/** The unit of a metric in a profile: the vocabulary's, else the profile's own declaration. */
export function unitOf(profile: { metrics: Record<string, { unit: string }> }, metric: string): string | undefined {
  return Object.hasOwn(metricUnits, metric) ? metricUnits[metric as keyof typeof metricUnits] : profile.metrics[metric]?.unit;
}

const profileChecks = (p: { points: { metric: string; unit: string }[]; conditions: Condition[]; metrics: Record<string, { unit: string }> }, ctx: z.RefinementCtx) => {
  const extras = Object.entries(p.metrics);
  if (extras.length > MAX_EXTRA_METRICS) {
    ctx.addIssue({ code: 'custom', path: ['metrics'], message: `${extras.length} extra metrics; at most ${MAX_EXTRA_METRICS} per profile, so that the time series' tags stay bounded` });
  }
  for (const [name, { unit }] of extras) {
    const own = Object.hasOwn(metricUnits, name) ? metricUnits[name as keyof typeof metricUnits] : undefined;
    // One name, one unit everywhere: a dashboard must never add Cel to K.
    if (own !== undefined && own !== unit) ctx.addIssue({ code: 'custom', path: ['metrics', name, 'unit'], message: `"${name}" is a vocabulary metric in "${own}"; it cannot be declared in "${unit}" (choose another name)` });
  }
  const metrics = new Set<string>();
  p.points.forEach((pt, i) => {
    const unit = unitOf(p, pt.metric);
    if (unit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['points', i, 'metric'], message: `"${pt.metric}" is not in the vocabulary (${Object.keys(metricUnits).join(', ')}); declare it under "metrics" with its unit` });
    } else if (pt.unit !== unit) {
      ctx.addIssue({ code: 'custom', path: ['points', i, 'unit'], message: `metric "${pt.metric}" is in "${unit}", not "${pt.unit}"` });
    }
    // The metric is a tag in the time series: two points with one metric would overwrite each other.
    if (metrics.has(pt.metric)) ctx.addIssue({ code: 'custom', path: ['points', i, 'metric'], message: `metric "${pt.metric}" is used by two data points` });
    metrics.add(pt.metric);
  });
  const ids = new Set<string>();
  p.conditions.forEach((c, i) => {
    if (!metrics.has(c.metric)) ctx.addIssue({ code: 'custom', path: ['conditions', i, 'metric'], message: `no data point has metric "${c.metric}"` });
    if (ids.has(c.id)) ctx.addIssue({ code: 'custom', path: ['conditions', i, 'id'], message: `condition "${c.id}" is defined twice` });
    ids.add(c.id);
  });
};

export const Profile = z.discriminatedUnion('transport', [MqttProfile, ModbusProfile, OpcuaProfile, SerialProfile]).superRefine(profileChecks);
export type Profile = z.infer<typeof Profile>;
export type Transport = Profile['transport'];
export type ProfileOf<T extends Transport> = Extract<Profile, { transport: T }>;
