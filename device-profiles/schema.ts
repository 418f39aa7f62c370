import { z } from 'zod';
import { Metric, SignalClass, metricUnits } from '../core/vocabulary.js';

/**
 * The device profile: a device model described as data. One declaration; the
 * TypeScript types are derived from it.
 *
 * This first version covers MQTT devices with JSON payloads; the other
 * transports (serial lines, Modbus RTU, OPC-UA) add their read specs here.
 */
const JsonPath = z
  .string()
  .regex(/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*|\[\d+\])*$/, 'must be a dotted path such as "data.temp" or "values[0]"');

export const DataPoint = z
  .object({
    metric: Metric,
    unit: z.string(),
    type: z.enum(['number', 'boolean']),
    /** Valid range of the decoded value; a reading outside is kept with quality "bad". */
    range: z.tuple([z.number(), z.number()]).optional(),
    scale: z.number().default(1),
    offset: z.number().default(0),
    /** Where the value sits in the device's own JSON payload. */
    json: JsonPath,
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.unit !== metricUnits[p.metric]) {
      ctx.addIssue({ code: 'custom', path: ['unit'], message: `metric "${p.metric}" is in "${metricUnits[p.metric]}", not "${p.unit}"` });
    }
    if (p.range && p.range[0] >= p.range[1]) {
      ctx.addIssue({ code: 'custom', path: ['range'], message: 'the low end must be below the high end' });
    }
  });
export type DataPoint = z.infer<typeof DataPoint>;

const Threshold = z
  .object({
    /** Raised when the value goes above this limit. */
    above: z.number().optional(),
    /** Raised when the value goes below this limit. */
    below: z.number().optional(),
    /** Hysteresis: the condition clears only once the value is this far back inside the limit. */
    deadband: z.number().nonnegative().default(0),
  })
  .strict()
  .refine((t) => (t.above === undefined) !== (t.below === undefined), 'give exactly one of "above" or "below"');

const Equals = z.object({ equals: z.union([z.boolean(), z.number()]) }).strict();

export const Condition = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be lower-case kebab-case'),
    class: SignalClass,
    metric: Metric,
    when: z.union([Equals, Threshold]),
  })
  .strict();
export type Condition = z.infer<typeof Condition>;

export const Profile = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{1,63}$/, 'must be lower-case kebab-case'),
    vendor: z.string().min(1),
    model: z.string().min(1),
    description: z.string().min(1),
    version: z.number().int().positive(),
    transport: z.literal('mqtt'),
    /** Where the device's own timestamp (epoch ms) sits in its payload; absent: the gateway's receive time. */
    time: JsonPath.optional(),
    points: z.array(DataPoint).min(1),
    conditions: z.array(Condition).default([]),
  })
  .strict()
  .superRefine((p, ctx) => {
    const metrics = new Set(p.points.map((d) => d.metric));
    p.conditions.forEach((c, i) => {
      if (!metrics.has(c.metric)) {
        ctx.addIssue({ code: 'custom', path: ['conditions', i, 'metric'], message: `no data point has metric "${c.metric}"` });
      }
    });
  });
export type Profile = z.infer<typeof Profile>;
