import { z } from 'zod';
import { LanguageTag, PublicHazard } from '../../core/vocabulary.js';
import { ID_PATTERN } from './topics.js';

export { LanguageTag, PublicHazard };

/**
 * What residents and public-alert aggregators get (ARCHITECTURE.md, data
 * minimization): the hazard, what to do, when, and a coarse area as H3 cells.
 * Never a business name, address, device id, raw reading, exact position,
 * trouble or test event, nor an id that leads back to the site: the alert id is
 * random. The schemas are strict, so a field that is not here cannot be sent.
 * Declared once; the hub builds and checks every public message with them and
 * the residents' page (web/) reads their types.
 */

/** A public alert's id: random, not derived from the site's event or alarm ids. */
export const PUBLIC_ALERT_ID = /^pa_[0-9a-f]{32}$/;

/** An H3 cell index (h3-js's string form: 15 hex digits, mode 1). */
export const H3_CELL = /^8[0-9a-f]{14}$/;


/** Public text: bounded, no control characters nor bidirectional overrides (it is shown on pages and in CAP). */
const PublicText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(s), 'must not contain control characters');

const EpochMs = z.number().int().nonnegative();

/** One language's words of an alert (CAP 1.2 §3.2.2: one <info> per language). */
export const PublicAlertText = z
  .object({
    lang: LanguageTag,
    /** CAP <event>: "Fire". */
    event: PublicText(60),
    headline: PublicText(160),
    /** What to do: CAP <instruction>. */
    instruction: PublicText(1000),
  })
  .strict();
export type PublicAlertText = z.infer<typeof PublicAlertText>;

export const PublicAlert = z
  .object({
    v: z.literal(1),
    id: z.string().regex(PUBLIC_ALERT_ID),
    /** CAP <status>: Actual, or Exercise (the demo); a hub in Test status publishes nothing. */
    status: z.enum(['Actual', 'Exercise']),
    /** active until the alarm returns to normal or a fire department ends it; then ended (CAP Cancel). */
    state: z.enum(['active', 'ended']),
    hazard: PublicHazard,
    /** True once a fire department confirmed it and asked to warn the public (CAP certainty Observed). */
    confirmed: z.boolean(),
    severity: z.enum(['Extreme', 'Severe', 'Moderate', 'Minor']),
    /** The district whose fire department answers for it: an administrative area, not a site. */
    district: z.string().regex(ID_PATTERN),
    /** In the languages the hub is configured for, the first is the hub's main one. */
    texts: z.array(PublicAlertText).min(1).max(20),
    /** When it was first published, last changed, and ended (hub time, ms). */
    sent: EpochMs,
    updated: EpochMs,
    ended: EpochMs.optional(),
    /** The area: H3 cells of one resolution, coarse enough that several registered sites share the centre cell. */
    area: z
      .object({
        resolution: z.number().int().min(0).max(15),
        cells: z.array(z.string().regex(H3_CELL)).min(1).max(100),
      })
      .strict(),
  })
  .strict();
export type PublicAlert = z.infer<typeof PublicAlert>;

/**
 * The retained message on `public/<cell>/alerts`: the alerts of that cell now
 * (the active ones, and those ended in the last hour or so, marked ended). An
 * empty payload (a cleared retained message) means none.
 */
export const PublicCellAlerts = z
  .object({
    v: z.literal(1),
    cell: z.string().regex(H3_CELL),
    alerts: z.array(PublicAlert).max(200),
    updated: EpochMs,
  })
  .strict();
export type PublicCellAlerts = z.infer<typeof PublicCellAlerts>;

/** What the residents' page needs to know of the hub (GET /public/v1/config). */
export const PublicConfigView = z
  .object({
    v: z.literal(1),
    /** The finest resolution alerts use; the page works its cells out from it. */
    resolution: z.number().int(),
    /** The coarsest: the page subscribes to its cell of this resolution and filters in the browser. */
    coarsestResolution: z.number().int(),
    languages: z.array(LanguageTag),
    status: z.enum(['Actual', 'Exercise', 'Test']),
  })
  .strict();
export type PublicConfigView = z.infer<typeof PublicConfigView>;
