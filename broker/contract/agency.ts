import { z } from 'zod';
import { SignalClass } from '../../core/vocabulary.js';
import { ID_PATTERN } from './topics.js';

/** The feed of `agency/<district>/summary` (retained): what an agency needs to see that safety works. */
export const AGENCY_SUMMARY_FEED = 'summary';

/** The trouble condition a gateway raises on itself while its full outbox drops telemetry (edge/gateway.ts raises it). */
export const TELEMETRY_DROPPED_CONDITION = 'telemetry-dropped';

const Count = z.number().int().nonnegative();
const Seconds = z.number().nonnegative().nullable();

/**
 * Per district, counts only: how many sites and devices are registered and
 * online, alarms per class per day, how fast fire departments acknowledge,
 * which share of devices is silent or in trouble, and telemetry drops. No site,
 * device or reading: an agency sees that safety works, not whose building it is.
 */
export const AgencySummary = z
  .object({
    v: z.literal(1),
    district: z.string().regex(ID_PATTERN),
    /** When it was computed (hub time, ms). */
    at: z.number().int().nonnegative(),
    sites: z.object({ registered: Count, online: Count }).strict(),
    gateways: z.object({ online: Count, offline: Count }).strict(),
    devices: z
      .object({
        /** Devices the district's online gateways report. */
        known: Count,
        online: Count,
        /** Not heard from within their profile's limit (communication lost). */
        silent: Count,
        /** With an open trouble or supervisory alarm. */
        inTrouble: Count,
      })
      .strict(),
    alarms: z
      .object({
        open: z.object({ unacknowledged: Count, acknowledged: Count, returnedUnacknowledged: Count }).strict(),
        /** New occurrences per UTC day and class, the latest day last. */
        perDay: z.array(z.object({ day: z.string().regex(/^\d{4}-\d\d-\d\d$/), classes: z.partialRecord(SignalClass, Count) }).strict()),
      })
      .strict(),
    /** Time from an alarm's activation at the hub to a fire department's acknowledgement, over `windowDays`. */
    timeToAcknowledge: z.object({ count: Count, medianSeconds: Seconds, p90Seconds: Seconds, windowDays: Count }).strict(),
    /** Episodes of a gateway dropping telemetry because its outbox was full (trouble "telemetry-dropped"), per window. */
    drops: z.object({ telemetryEpisodes: Count, windowDays: Count }).strict(),
  })
  .strict();
export type AgencySummary = z.infer<typeof AgencySummary>;
