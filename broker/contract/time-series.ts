/**
 * The time-series names (InfluxDB measurements, tags and fields), declared
 * once: the writers in cloud-sync, InfluxQL reads and dashboards use these.
 * Tags stay bounded (site, device, metric, profile, district, class); values
 * are fields.
 */
export const timeSeries = {
  /** A reading of a device, at the device's time. */
  reading: { measurement: 'reading', tags: ['site', 'device', 'metric', 'profile'], fields: ['value', 'quality', 'unit'] },
  /** An alarm, supervisory or trouble event of the edge. */
  event: { measurement: 'event', tags: ['site', 'device', 'class', 'condition'], fields: ['state', 'event_id', 'value', 'metric', 'text', 'chattering'] },
  /** The agency summary of a district, every `cloudSync.agency.intervalSeconds` (counts only, no site). */
  agencySummary: {
    measurement: 'agency_summary',
    tags: ['district'],
    fields: [
      'sites_registered',
      'sites_online',
      'gateways_online',
      'gateways_offline',
      'devices_known',
      'devices_online',
      'devices_silent',
      'devices_in_trouble',
      'alarms_unacknowledged',
      'alarms_acknowledged',
      'alarms_returned_unacknowledged',
      'ack_count',
      'ack_median_seconds',
      'ack_p90_seconds',
      'telemetry_drop_episodes',
    ],
  },
  /** New alarm occurrences of a district and class on one UTC day, at the day's start: rewritten while the day lasts. */
  agencyAlarmsDaily: { measurement: 'agency_alarms_daily', tags: ['district', 'class'], fields: ['count'] },
} as const;

export type AgencySummaryField = (typeof timeSeries.agencySummary.fields)[number];
