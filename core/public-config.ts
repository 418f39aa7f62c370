import { z } from 'zod';
import { LanguageTag, PublicHazard } from './vocabulary.js';

/**
 * The residents' and agencies' part of the config (`cloudSync.public`,
 * `cloudSync.agency`), composed into the one schema of core/config.ts.
 */
const District = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be a district id');

/**
 * When an alarm of a class becomes a public alert: `auto` as soon as it is
 * active, `on-confirmation` once a fire department's acknowledgement says "warn
 * the public", `never`.
 */
export const PublicPolicy = z.enum(['auto', 'on-confirmation', 'never']);
export type PublicPolicy = z.infer<typeof PublicPolicy>;

/** The classes a policy can be set for; intrusion, supervisory and trouble signals are never public. */
export const PublicClass = z.enum(['fire', 'gas', 'co', 'waterflow']);
export type PublicClass = z.infer<typeof PublicClass>;

const ClassPolicies = z.partialRecord(PublicClass, PublicPolicy);

const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(s), 'must not contain control characters');

/** One language's words for one hazard; any part left out comes from the built-in English. */
export const HazardText = z
  .object({
    event: Text(60).optional().describe('CAP <event>: "Fire"'),
    headline: Text(160).optional().describe('The headline residents see first'),
    instruction: Text(1000).optional().describe('What residents should do'),
  })
  .strict();
export type HazardText = z.infer<typeof HazardText>;

export const PublicConfig = z
  .object({
    enabled: z.boolean().default(true).describe('Publish alerts for residents (MQTT public/<cell>/alerts, /public/v1/..., the residents\' page)'),
    policy: z
      .object({
        default: PublicPolicy.default('on-confirmation').describe('For every class not named below'),
        classes: ClassPolicies.default({}).describe('Per class: fire, gas, co, waterflow'),
        districts: z
          .record(District, z.object({ default: PublicPolicy.optional(), classes: ClassPolicies.default({}) }).strict())
          .default({})
          .describe('Per district, over the defaults above'),
      })
      .strict()
      .prefault({}),
    resolution: z.number().int().min(5).max(10).default(8).describe('H3 resolution of a public alert\'s area (8: about 0.7 km² a cell)'),
    coarsestResolution: z.number().int().min(0).max(9).default(5).describe('Coarsest resolution an area is widened to (5: about 250 km²); residents\' pages subscribe to their cell of it'),
    minSitesPerCell: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(3)
      .describe('k: an alert\'s cell is widened to its parent while fewer than k registered sites fall in it, so one alert does not point at one building'),
    ring: z.number().int().min(0).max(3).default(1).describe('Neighbouring cells included around the site\'s cell (smoke does not stop at a cell\'s edge)'),
    languages: z.array(LanguageTag).min(1).max(20).default(['en']).describe('Languages of every public alert, the main one first; English texts are built in, others come from `texts`'),
    texts: z
      .partialRecord(PublicHazard, z.record(LanguageTag, HazardText))
      .default({})
      .describe('Per hazard (fire, gas, co) and language: event, headline, instruction'),
    endedVisibleMinutes: z.number().int().min(0).max(10_080).default(60).describe('How long an ended alert stays in the current lists, marked ended'),
    logSize: z.number().int().min(100).max(1_000_000).default(10_000).describe('Public alert messages kept for SSE resumption (Last-Event-ID)'),
    baseUrl: z.url({ protocol: /^https?$/ }).optional().describe('Public URL of the hub (Atom and CAP links); default: from each request\'s Host'),
    requestsPerMinute: z.number().int().min(1).max(100_000).default(300).describe('Requests per client address per minute on the public endpoints and pages'),
    maxStreams: z.number().int().min(1).max(1_000_000).default(10_000).describe('Open SSE streams, all clients together'),
    maxStreamsPerAddress: z.number().int().min(1).max(10_000).default(20).describe('Open SSE streams of one client address'),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.coarsestResolution > p.resolution) ctx.addIssue({ code: 'custom', path: ['coarsestResolution'], message: `must not be finer than resolution (${p.resolution})` });
    p.languages.forEach((lang, i) => {
      if (lang === 'en' || lang.startsWith('en-')) return;
      for (const hazard of PublicHazard.options) {
        if (!p.texts[hazard]?.[lang]?.instruction || !p.texts[hazard]?.[lang]?.headline) {
          ctx.addIssue({ code: 'custom', path: ['languages', i], message: `language "${lang}" needs texts.${hazard}.${lang}.headline and .instruction (only English is built in)` });
        }
      }
    });
  });
export type PublicConfig = z.infer<typeof PublicConfig>;

export const AgencyConfig = z
  .object({
    enabled: z.boolean().default(true).describe('Publish district summaries for agencies (MQTT agency/<district>/summary, HTTP, InfluxDB)'),
    intervalSeconds: z.number().int().min(5).max(86_400).default(60).describe('How often each district\'s summary is published and recorded'),
    windowDays: z.number().int().min(1).max(90).default(7).describe('Days of alarms per day, time to acknowledge and drops in a summary'),
  })
  .strict();
export type AgencyConfig = z.infer<typeof AgencyConfig>;
