import { z } from 'zod';

/**
 * `cloudSync.timeSeries`: the hub's own records in InfluxDB (with
 * `cloudSync.influx`), what the Grafana dashboards of dashboards/ read besides
 * readings and events: the alarm lifecycle, public alerts, and the hub's
 * operations (what /metrics says, so an installation without Prometheus sees it).
 */
export const TimeSeriesConfig = z
  .object({
    enabled: z.boolean().default(true).describe('Record the alarm lifecycle, public alerts and the hub\'s operations in InfluxDB for the dashboards'),
    intervalSeconds: z
      .number()
      .int()
      .min(1)
      // The dashboards read "open now" and "online now" from the last 3 minutes: at most a minute between records.
      .max(60)
      .default(10)
      .describe('How often the hub\'s operations, its gateways and the alarms still open are recorded (the dashboards look 3 minutes back)'),
    instance: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
      .optional()
      .describe('The `instance` tag of this cloud-sync\'s hub points, to tell several apart; default: the host name'),
  })
  .strict();
export type TimeSeriesConfig = z.infer<typeof TimeSeriesConfig>;
