/**
 * Every metric cosafe exports, declared once: name, kind, help text and label
 * names. `core/metrics.ts` builds the prom-client metrics from this table, and
 * its methods accept only names declared here (a counter name for `inc`, a
 * gauge for `set`, a histogram for `observe`), with only the labels declared
 * for them, so a typo or a second spelling of a metric does not compile.
 *
 * Latencies are histograms (seconds, Prometheus' base unit), so a p99 can be
 * read in production with `histogram_quantile`, not only in the bench.
 */
export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  readonly kind: MetricKind;
  readonly help: string;
  readonly labels: readonly string[];
  /** Histograms: upper bounds of the buckets, in the metric's unit. */
  readonly buckets?: readonly number[];
}

/** Buckets for an alarm's way from the device to the fire department: 1 ms to 2 min. */
const ALARM_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export const metricCatalog = {
  // edge
  cosafe_edge_decode_errors_total: { kind: 'counter', help: 'Device inputs that could not be fully decoded', labels: ['device'] },
  cosafe_edge_unknown_device_messages_total: {
    kind: 'counter',
    help: 'Messages from devices that are not configured (acknowledged, not decoded), by how they came: a contract uplink, a bridge, another topic',
    labels: ['via'],
  },
  cosafe_edge_device_time_rejected_total: {
    kind: 'counter',
    help: "Readings and signals whose device time was too far from the gateway's clock (stamped with the receive time, quality uncertain)",
    labels: ['device'],
  },
  cosafe_edge_bad_readings_total: { kind: 'counter', help: 'Readings outside their valid range (kept with quality "bad")', labels: ['device', 'metric'] },
  cosafe_edge_readings_total: { kind: 'counter', help: 'Readings decoded at the edge', labels: [] },
  cosafe_edge_events_total: { kind: 'counter', help: 'Alarm, supervisory and trouble events raised or cleared at the edge', labels: ['class', 'state'] },
  cosafe_edge_chattering_total: { kind: 'counter', help: 'Activations of conditions that chatter (3+ within 60 s)', labels: ['device', 'condition'] },
  cosafe_edge_state_write_errors_total: { kind: 'counter', help: 'Condition state could not be saved', labels: [] },
  cosafe_edge_outbox_dropped_total: { kind: 'counter', help: 'Readings dropped because the outbox was full (oldest first)', labels: [] },
  cosafe_edge_publish_failed_total: { kind: 'counter', help: 'Publishes that failed (sent again from the outbox)', labels: ['kind'] },
  cosafe_edge_published_total: { kind: 'counter', help: 'Readings and events acknowledged by the hub (PUBACK)', labels: ['kind'] },
  cosafe_edge_outbox_readings: { kind: 'gauge', help: 'Readings in the outbox, not yet acknowledged by the hub', labels: [] },
  cosafe_edge_outbox_events: { kind: 'gauge', help: 'Events in the outbox, not yet acknowledged by the hub', labels: [] },
  cosafe_edge_outbox_errors_total: { kind: 'counter', help: 'Readings and events the outbox could not store (disk full, I/O error)', labels: ['kind'] },

  // broker
  cosafe_broker_persistence_errors_total: { kind: 'counter', help: 'Messages the broker could not store (refused, not acknowledged)', labels: [] },
  cosafe_broker_journal_replayed_total: { kind: 'counter', help: 'Acknowledged messages handed on again after a crash of the broker', labels: [] },
  cosafe_broker_connections: { kind: 'gauge', help: 'Open connections, by listener', labels: ['listener'] },
  cosafe_broker_auth_failures_total: { kind: 'counter', help: 'Clients refused at CONNECT, by reason', labels: ['reason', 'listener'] },
  cosafe_broker_denied_total: { kind: 'counter', help: 'Publishes, subscriptions and deliveries denied by the ACL', labels: ['action', 'role'] },
  cosafe_broker_limit_hits_total: { kind: 'counter', help: 'Times a client hit a broker limit, by limit', labels: ['limit'] },
  cosafe_broker_sessions_ended_total: { kind: 'counter', help: 'Sessions the broker ended because their credential was revoked or rotated', labels: ['reason'] },
  cosafe_broker_cluster_credentials_refused_total: { kind: 'counter', help: 'Credential rows from the Redis of a cluster that were not valid and were ignored', labels: [] },
  cosafe_broker_client_errors_total: { kind: 'counter', help: 'Client connections ended by a protocol or socket error', labels: [] },
  cosafe_broker_internal_errors_total: { kind: 'counter', help: "Errors of the broker itself, not of a client (in a cluster: Redis unreachable for its sweep of dead brokers' wills)", labels: [] },
  cosafe_broker_telemetry_held: {
    kind: 'gauge',
    help: 'Telemetry publishes the broker holds back (not yet acknowledged) because its window towards the subscribers is full: backpressure to the gateways',
    labels: [],
  },
  cosafe_broker_uplink_held: { kind: 'gauge', help: "Devices' own uplink publishes the broker holds back (not yet acknowledged) because it is working on as many as it takes at once", labels: [] },
  cosafe_broker_uplink_held_total: { kind: 'counter', help: "Devices' own uplink publishes that waited their turn because the broker was working on as many as it takes at once (broker.limits.uplinkWindow)", labels: [] },
  cosafe_broker_uplink_inflight: { kind: 'gauge', help: "Devices' own uplink publishes the broker has taken and not yet queued for every subscriber", labels: [] },
  cosafe_broker_telemetry_inflight_bytes: { kind: 'gauge', help: 'Bytes of telemetry the broker has taken and not yet handed to every subscriber (its window)', labels: [] },

  // cloud-sync: the contract consumer
  cosafe_sync_duplicate_batches_total: { kind: 'counter', help: 'Reading batches received twice (not stored twice)', labels: ['gateway'] },
  cosafe_sync_readings_received_total: { kind: 'counter', help: 'Readings received from gateways', labels: [] },
  cosafe_sync_sequence_holes: {
    kind: 'gauge',
    help: 'Reading batches not (yet) received below the highest received, per gateway: a backlog on its way, or batches the gateway dropped',
    labels: ['gateway'],
  },
  cosafe_sync_alarm_inbox_messages: { kind: 'gauge', help: 'Events and status messages taken from the broker and not yet handled by every sink (handled by priority: alarm, supervisory, trouble, status)', labels: [] },
  cosafe_sync_alarm_inbox_errors_total: { kind: 'counter', help: 'Messages the alarm inbox could not store or hand on (disk full, I/O error); each is tried again, none is acknowledged before it is stored', labels: [] },
  cosafe_sync_events_received_total: { kind: 'counter', help: 'Alarm events received from gateways', labels: ['class'] },
  cosafe_sync_events_repaired_total: { kind: 'counter', help: 'Alarm events that broke the contract only in descriptive fields (text, location, unit, ...): cleaned and taken, never refused', labels: ['class'] },
  cosafe_sync_status_unpaired_total: { kind: 'counter', help: 'Periodic gateway statuses for a device list the hub had not seen (devices kept as last known until the next full status)', labels: ['gateway'] },
  cosafe_sync_invalid_messages_total: { kind: 'counter', help: 'Messages on contract topics that broke the contract', labels: [] },

  // cloud-sync: workers splitting the sites (cloudSync.partitions)
  cosafe_sync_partitions_held: { kind: 'gauge', help: 'Partitions of the sites whose leases this cloud-sync worker holds (cloudSync.partitions): it consumes their broker sessions', labels: [] },
  cosafe_sync_partition_lease_claims_total: { kind: 'counter', help: 'Partition leases this worker claimed in Redis (at its start, from a worker that died, or given up by another)', labels: [] },
  cosafe_sync_partition_lease_losses_total: { kind: 'counter', help: 'Partition leases this worker let go of: another worker holds it (taken), Redis unreachable until the lease would have expired (unreachable), or given up so the partitions spread over more workers (rebalanced)', labels: ['reason'] },
  cosafe_sync_partition_lease_errors_total: { kind: 'counter', help: 'Lease renewals that failed because Redis did not answer (the worker keeps its partitions until the leases would expire)', labels: [] },
  cosafe_sync_alarm_lane_other_partition_total: { kind: 'counter', help: "Events and status messages of sites of another partition, acknowledged and left to that partition's session (every partition's alarm session has them)", labels: [] },
  cosafe_sync_unregistered_sites: { kind: 'gauge', help: "Sites of this worker's partitions heard on the alarm lane (status, events) but not in the site registry: with partitions, their readings are not received until they are registered", labels: [] },
  cosafe_sync_alarm_state_writes_total: { kind: 'counter', help: "Writes of an alarm's shared copy to Redis (cloudSync.partitions): written, superseded (Redis had a newer version), not-holder (the partition's lease was no longer this worker's)", labels: ['outcome'] },
  cosafe_sync_alarm_state_errors_total: { kind: 'counter', help: 'Operations on the shared alarm state in Redis that failed (write, load, relay, stash, connect: Redis did not answer; decode, import: a bad copy); failed writes are retried', labels: ['op'] },
  cosafe_sync_alarms_taken_over_total: { kind: 'counter', help: "Alarms this worker took over from another worker's shared copy on claiming a partition: it escalates them and applies their acknowledgements from then on", labels: [] },
  cosafe_sync_alarm_acks_relayed_total: { kind: 'counter', help: 'HTTP acknowledgements of an alarm of a partition another worker holds, handed to that worker through Redis (answered 202)', labels: [] },

  // cloud-sync: the local store
  cosafe_store_points_written_total: { kind: 'counter', help: 'Readings written to the local store', labels: [] },
  cosafe_store_write_errors_total: { kind: 'counter', help: 'Batches the local store could not write', labels: [] },

  // cloud-sync: InfluxDB
  cosafe_influx_buffer_errors_total: { kind: 'counter', help: 'Points the InfluxDB buffer could not store (disk full, I/O error); not acknowledged', labels: [] },
  cosafe_influx_points_written_total: { kind: 'counter', help: 'Points InfluxDB accepted', labels: [] },
  cosafe_influx_points_rejected_total: { kind: 'counter', help: 'Points InfluxDB rejected as invalid (set aside in the dead-letter table)', labels: [] },
  cosafe_influx_points_refused_total: {
    kind: 'counter',
    help: 'Points cloud-sync did not write because a tag or field holds what line protocol cannot carry (a newline, a backslash in a tag)',
    labels: [],
  },
  cosafe_influx_write_errors_total: { kind: 'counter', help: 'Write requests to InfluxDB that failed and will be retried', labels: [] },
  cosafe_influx_points_dropped_total: { kind: 'counter', help: 'Readings dropped because the InfluxDB buffer was full (oldest first; events are never dropped)', labels: [] },
  cosafe_influx_buffered_points: { kind: 'gauge', help: 'Points in the on-disk buffers, not yet written to InfluxDB, by lane (each has its buffer)', labels: ['lane'] },

  // cloud-sync: fire departments
  cosafe_dispatch_duplicates_total: { kind: 'counter', help: 'Alarm events received again and not sent twice', labels: ['department'] },
  cosafe_dispatch_delivered_total: { kind: 'counter', help: 'Alarm webhooks a fire department acknowledged (2xx)', labels: ['department', 'class'] },
  cosafe_dispatch_failures_total: { kind: 'counter', help: 'Alarm webhook attempts that failed and will be retried', labels: ['department'] },
  cosafe_alarm_lane_latency_seconds: {
    kind: 'histogram',
    help: "Alarm events from the device's reading time to each hop of the alarm lane: published (the hub acknowledged it to the gateway), received (cloud-sync took it from the broker)",
    labels: ['class', 'stage'],
    buckets: ALARM_LATENCY_BUCKETS,
  },
  cosafe_alarm_delivery_latency_seconds: {
    kind: 'histogram',
    help: "Alarm events from the device's reading time to the fire department's 2xx, by channel",
    labels: ['class', 'channel'],
    buckets: ALARM_LATENCY_BUCKETS,
  },

  // cloud-sync: the site registry
  cosafe_sites_registered: { kind: 'gauge', help: 'Sites in the registry', labels: [] },
  cosafe_site_problems_total: {
    kind: 'counter',
    help: 'Gateways or alarms of a site that is not registered, or whose credential names another district than the registry',
    labels: ['problem'],
  },

  // cloud-sync: the alarm lifecycle (ISA-18.2)
  cosafe_alarm_transitions_total: { kind: 'counter', help: 'Alarm state transitions journaled, by class and new state', labels: ['class', 'to'] },
  cosafe_alarm_duplicate_events_total: { kind: 'counter', help: 'Alarm events received again (same event id) and not applied twice', labels: [] },
  cosafe_alarm_late_events_total: { kind: 'counter', help: 'Alarm "cleared" events older than an activation of their condition already received (out of order): journaled, not applied', labels: [] },
  cosafe_alarms: { kind: 'gauge', help: 'Alarms by lifecycle state (not counting normal)', labels: ['state'] },
  cosafe_alarm_acks_total: { kind: 'counter', help: 'Acknowledgements accepted, by channel', labels: ['channel'] },
  cosafe_alarm_acks_refused_total: { kind: 'counter', help: 'Acknowledgements refused, by channel and reason', labels: ['channel', 'reason'] },
  cosafe_alarm_ack_latency_seconds: {
    kind: 'histogram',
    help: 'Alarms from activation (device time) to acknowledgement by a fire department',
    labels: ['class'],
    buckets: [1, 5, 10, 30, 60, 90, 120, 180, 300, 600, 1800, 3600],
  },
  cosafe_alarm_escalations_total: { kind: 'counter', help: 'Escalation steps taken for alarms not acknowledged in time', labels: ['district', 'step'] },
  cosafe_alarm_shelved_total: { kind: 'counter', help: 'Supervisory and trouble alarms shelved', labels: [] },
  cosafe_alarm_fallback_routes_total: {
    kind: 'counter',
    help: 'Alarms sent to every fire department because their site is not registered or no department serves their district',
    labels: ['reason'],
  },
  cosafe_dispatch_mqtt_published_total: { kind: 'counter', help: 'Dispatch messages the broker acknowledged on dispatch/<district>/alarms/<site>', labels: ['district'] },
  cosafe_dispatch_mqtt_failures_total: { kind: 'counter', help: 'Dispatch messages that could not be published and will be retried', labels: [] },

  // cloud-sync: residents' alerts and agency feeds
  cosafe_public_messages_total: { kind: 'counter', help: 'Public alert messages published (Alert, Update, Cancel), by hazard', labels: ['hazard', 'msg_type'] },
  cosafe_public_alerts_active: { kind: 'gauge', help: 'Public alerts active now', labels: [] },
  cosafe_public_withheld_total: {
    kind: 'counter',
    help: 'Alarm occurrences of a public class not made public, by reason (awaiting-confirmation, test-event, unregistered)',
    labels: ['reason'],
  },
  cosafe_public_area_below_k_total: { kind: 'counter', help: 'Public alerts whose coarsest allowed cell still holds fewer than k registered sites', labels: [] },
  cosafe_public_streams: { kind: 'gauge', help: 'Open Server-Sent Events streams of public alerts', labels: [] },
  cosafe_public_requests_limited_total: { kind: 'counter', help: 'Public requests refused by the rate limit or the stream limits', labels: ['limit'] },
  cosafe_feed_publish_failures_total: { kind: 'counter', help: 'Retained public or agency messages that could not be published (sent again on reconnect)', labels: ['feed'] },
  cosafe_agency_summaries_total: { kind: 'counter', help: 'District summaries published for agencies', labels: [] },

  // cloud-sync: the hub's own records in InfluxDB (for the dashboards)
  cosafe_timeseries_points_total: { kind: 'counter', help: "Points of the hub's own records (alarm lifecycle, public alerts, hub operations) handed to the InfluxDB buffer, by measurement", labels: ['measurement'] },
  cosafe_timeseries_errors_total: {
    kind: 'counter',
    help: "Records of the hub that could not be made or buffered for InfluxDB, by measurement (alarm transitions are tried again at the next change)",
    labels: ['measurement'],
  },

  // cloud-sync: the HTTP API
  cosafe_http_auth_failures_total: { kind: 'counter', help: 'HTTP requests refused for want of a valid credential, by reason', labels: ['reason'] },
  cosafe_http_denied_total: { kind: 'counter', help: 'HTTP requests refused because the credential may not do what was asked', labels: ['permission', 'role'] },
  cosafe_http_limit_hits_total: { kind: 'counter', help: 'HTTP sign-ins and secrets refused unchecked after too many failed logins, by limit', labels: ['limit'] },
  cosafe_http_csrf_refused_total: { kind: 'counter', help: 'State-changing HTTP requests refused as cross-site, or without their session\'s CSRF token, by why', labels: ['why'] },
  cosafe_http_logins_total: { kind: 'counter', help: 'Sign-ins on the pages, by role', labels: ['role'] },
  cosafe_http_sessions: { kind: 'gauge', help: 'Browser sessions of the pages that have not expired', labels: [] },
  cosafe_http_alarm_streams: { kind: 'gauge', help: 'Live alarm streams (Server-Sent Events) open to the pages', labels: [] },
} as const satisfies Record<string, MetricDef>;

type Catalog = typeof metricCatalog;
export type MetricName = keyof Catalog;
type NamesOf<K extends MetricKind> = { [N in MetricName]: Catalog[N]['kind'] extends K ? N : never }[MetricName];
export type CounterName = NamesOf<'counter'>;
export type GaugeName = NamesOf<'gauge'>;
export type HistogramName = NamesOf<'histogram'>;
/** The labels a metric declares, each optional (an absent label is exported empty, as Prometheus reads it). */
export type LabelsOf<N extends MetricName> = Partial<Record<Catalog[N]['labels'][number], string>>;
