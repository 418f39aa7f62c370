/**
 * The time-series names (InfluxDB measurements, tags and fields), declared
 * once: the writers in cloud-sync, InfluxQL reads and the Grafana dashboards
 * (dashboards/) use these. Tags stay bounded (site, device, metric, profile,
 * district, class, condition, hazard, instance, gateway); values are fields.
 */
export const timeSeries = {
  /** A reading of a device, at the device's time. */
  reading: { measurement: 'reading', tags: ['site', 'device', 'metric', 'profile'], fields: ['value', 'quality', 'unit'] },
  /** An alarm, supervisory or trouble event of the edge, at the device's time. */
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
  /**
   * The hub's alarm lifecycle (ISA-18.2), two kinds of point told apart by the
   * `record` tag:
   * - `transition`: one per journaled state transition, at the hub's time of it
   *   (`change` says which: activate, reactivate, acknowledge, return, clear;
   *   `ack_seconds` on an acknowledgement, from the occurrence's activation);
   * - `open`: every alarm that is not normal, every `cloudSync.timeSeries.intervalSeconds`,
   *   so that "open now" is read from the last few minutes, however long ago the
   *   alarm became active; its return to normal is a `transition` with open=0.
   * `district` is absent for a site that is not registered.
   */
  alarm: {
    measurement: 'alarm',
    tags: ['district', 'site', 'device', 'condition', 'class', 'record'],
    fields: ['alarm_id', 'state', 'change', 'open', 'unacknowledged', 'activation', 'ack_seconds', 'open_seconds', 'shelved', 'channel', 'test'],
  },
  /**
   * A public alert for residents (data minimization: no site, device or reading), one point per alert at the
   * time it was first sent, rewritten with every message (Alert, Update, Cancel) so that it holds its latest state.
   * `cell` is the centre H3 cell of its area.
   */
  publicAlert: {
    measurement: 'public_alert',
    tags: ['district', 'hazard', 'cell'],
    fields: ['alert_id', 'msg_type', 'state', 'active', 'confirmed', 'messages', 'cells', 'resolution', 'updated', 'ended', 'duration_seconds'],
  },
  /**
   * The hub's own operations, every `cloudSync.timeSeries.intervalSeconds`, one point per cloud-sync
   * `instance`: counters as what happened during the interval (`interval_seconds` long), gauges as they are.
   */
  hub: {
    measurement: 'hub',
    tags: ['instance'],
    fields: [
      'interval_seconds',
      'readings_received',
      'events_received',
      'invalid_messages',
      'duplicate_batches',
      'sequence_holes',
      'points_written',
      'points_rejected',
      'points_refused',
      'points_dropped',
      'outbox_dropped',
      'write_errors',
      'buffered_points',
      'pending_deliveries',
      'deliveries',
      'delivery_failures',
      'delivery_latency_count',
      'delivery_latency_mean_seconds',
      'delivery_latency_p50_seconds',
      'delivery_latency_p95_seconds',
      'delivery_latency_p99_seconds',
      'alarms_unacknowledged',
      'alarms_acknowledged',
      'alarms_returned_unacknowledged',
      'acks',
      'escalations',
      'gateways_online',
      'gateways_offline',
      'gateway_outbox_readings',
      'gateway_outbox_events',
      'broker_connections',
      'auth_failures',
      'denied',
      'public_alerts_active',
      'public_messages',
    ],
  },
  /** Every gateway the hub has heard of, every `cloudSync.timeSeries.intervalSeconds`: online or not, its outbox, its devices. */
  hubGateway: {
    measurement: 'hub_gateway',
    tags: ['instance', 'site', 'gateway'],
    fields: ['online', 'since', 'devices', 'devices_silent', 'outbox_readings', 'outbox_events', 'outbox_connected'],
  },
} as const;

export type AgencySummaryField = (typeof timeSeries.agencySummary.fields)[number];
export type AlarmSeriesField = (typeof timeSeries.alarm.fields)[number];
export type PublicAlertSeriesField = (typeof timeSeries.publicAlert.fields)[number];
export type HubField = (typeof timeSeries.hub.fields)[number];
export type HubGatewayField = (typeof timeSeries.hubGateway.fields)[number];
/** `alarm` points: a journaled transition, or an alarm still open at a recording interval. */
export type AlarmRecordKind = 'transition' | 'open';
/** Which ISA-18.2 transition an `alarm` transition point is. */
export type AlarmChange = 'activate' | 'reactivate' | 'acknowledge' | 'return' | 'clear';
