import { timeSeries, type GatewayStatus, type HubField } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { CounterName, GaugeName, HistogramTotals, Metrics } from '../../core/metrics.js';
import { int } from '../influx/line-protocol.js';
import { hubGatewayLine, hubLine } from '../influx/record-lines.js';
import { recordPoints, type WriteRecords } from './record-writer.js';

export interface HubOperationsDeps {
  metrics: Metrics;
  write: WriteRecords;
  intervalSeconds: number;
  /** The `instance` tag: which cloud-sync wrote the point. */
  instance: string;
  /** Alarm messages to fire departments not yet delivered (the dispatch outbox). */
  pendingDeliveries: () => number;
  clock: Clock;
  logger: Logger;
}

/** Counters: `hub` records what they counted during the interval (the sum of the metrics named). */
const COUNTERS: Partial<Record<HubField, readonly CounterName[]>> = {
  readings_received: ['cosafe_sync_readings_received_total'],
  events_received: ['cosafe_sync_events_received_total'],
  invalid_messages: ['cosafe_sync_invalid_messages_total'],
  duplicate_batches: ['cosafe_sync_duplicate_batches_total'],
  points_written: ['cosafe_influx_points_written_total', 'cosafe_store_points_written_total'],
  points_rejected: ['cosafe_influx_points_rejected_total'],
  points_refused: ['cosafe_influx_points_refused_total'],
  points_dropped: ['cosafe_influx_points_dropped_total'],
  outbox_dropped: ['cosafe_edge_outbox_dropped_total'],
  write_errors: ['cosafe_influx_write_errors_total', 'cosafe_influx_buffer_errors_total', 'cosafe_store_write_errors_total'],
  deliveries: ['cosafe_dispatch_delivered_total', 'cosafe_dispatch_mqtt_published_total'],
  delivery_failures: ['cosafe_dispatch_failures_total', 'cosafe_dispatch_mqtt_failures_total'],
  acks: ['cosafe_alarm_acks_total'],
  escalations: ['cosafe_alarm_escalations_total'],
  auth_failures: ['cosafe_broker_auth_failures_total', 'cosafe_http_auth_failures_total'],
  denied: ['cosafe_broker_denied_total', 'cosafe_http_denied_total'],
  public_messages: ['cosafe_public_messages_total'],
};

/** Gauges, summed over their label sets. */
const GAUGES: Partial<Record<HubField, readonly GaugeName[]>> = {
  sequence_holes: ['cosafe_sync_sequence_holes'],
  buffered_points: ['cosafe_influx_buffered_points'],
  broker_connections: ['cosafe_broker_connections'],
  public_alerts_active: ['cosafe_public_alerts_active'],
};

/** The lifecycle's alarms by ISA-18.2 state (the `cosafe_alarms` gauge). */
const ALARM_STATES = {
  alarms_unacknowledged: 'active-unacknowledged',
  alarms_acknowledged: 'active-acknowledged',
  alarms_returned_unacknowledged: 'returned-unacknowledged',
} as const satisfies Partial<Record<HubField, string>>;

const QUANTILES = [
  ['delivery_latency_p50_seconds', 0.5],
  ['delivery_latency_p95_seconds', 0.95],
  ['delivery_latency_p99_seconds', 0.99],
] as const satisfies readonly (readonly [HubField, number])[];

/**
 * The q-quantile of the observations between two states of a histogram, as
 * Prometheus' histogram_quantile() estimates it: linear within the bucket the
 * rank falls in; in the +Inf bucket, the highest finite bound. Null without
 * observations in between.
 */
export function intervalQuantile(before: HistogramTotals | undefined, now: HistogramTotals, q: number): number | null {
  const prior = new Map(before?.buckets.map((b) => [b.le, b.count]));
  const buckets = now.buckets.map((b) => ({ le: b.le, count: b.count - (prior.get(b.le) ?? 0) }));
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      const inBucket = b.count - below;
      return inBucket > 0 ? lower + ((b.le - lower) * (rank - below)) / inBucket : b.le;
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

interface KnownGateway {
  status: GatewayStatus;
  /** From the last status that carried health (the last will carries none). */
  health: GatewayStatus['health'];
}

/**
 * The hub's operations in InfluxDB (`hub`, `hub_gateway`), every
 * `intervalSeconds`: what /metrics exports for Prometheus, so that the
 * operations dashboard has its data on an installation with InfluxDB only.
 * Counters become what happened during the interval (a restart starts them
 * at zero again, which the next point counts from), gauges are read as they are.
 */
export class HubOperations {
  readonly name = 'hub-operations';
  private timer: NodeJS.Timeout | undefined;
  private readonly gateways = new Map<string, KnownGateway>();
  private last: { at: number; counters: Map<HubField, number>; latency: HistogramTotals | undefined } | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly d: HubOperationsDeps) {}

  async start(): Promise<void> {
    this.last = { at: this.d.clock.now(), counters: this.counters(), latency: await this.d.metrics.histogram('cosafe_alarm_delivery_latency_seconds') };
    this.timer = setInterval(() => {
      this.running ??= this.record().finally(() => (this.running = undefined));
    }, this.d.intervalSeconds * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** A gateway's retained status (alarm lane): online with its health, or its last will. */
  onStatus(status: GatewayStatus): void {
    const key = `${status.site}/${status.gateway}`;
    this.gateways.set(key, { status, health: status.health ?? this.gateways.get(key)?.health });
  }

  /** Records one interval now (the timer calls it; tests too). */
  async record(): Promise<void> {
    const { metrics, clock } = this.d;
    try {
      const now = clock.now();
      const counters = this.counters();
      const latency = await metrics.histogram('cosafe_alarm_delivery_latency_seconds');
      const before = this.last;
      const fields: Partial<Record<HubField, { int: number } | number>> = { interval_seconds: before ? Math.max(0, (now - before.at) / 1000) : this.d.intervalSeconds };
      for (const [field, value] of counters) fields[field] = int(Math.max(0, value - (before?.counters.get(field) ?? 0)));
      for (const [field, names] of Object.entries(GAUGES) as [HubField, readonly GaugeName[]][]) fields[field] = names.reduce((sum, n) => sum + metrics.total(n), 0);
      for (const [field, state] of Object.entries(ALARM_STATES) as [HubField, string][]) fields[field] = int(metrics.get('cosafe_alarms', { state }));
      fields.pending_deliveries = int(this.d.pendingDeliveries());
      const observed = latency.count - (before?.latency?.count ?? 0);
      fields.delivery_latency_count = int(Math.max(0, observed));
      if (observed > 0) {
        fields.delivery_latency_mean_seconds = (latency.sum - (before?.latency?.sum ?? 0)) / observed;
        for (const [field, q] of QUANTILES) {
          const v = intervalQuantile(before?.latency, latency, q);
          if (v !== null) fields[field] = v;
        }
      }
      const gateways = [...this.gateways.values()];
      const online = gateways.filter((g) => g.status.state === 'online');
      fields.gateways_online = int(online.length);
      fields.gateways_offline = int(gateways.length - online.length);
      fields.gateway_outbox_readings = int(online.reduce((s, g) => s + (g.health?.outbox?.readings ?? 0), 0));
      fields.gateway_outbox_events = int(online.reduce((s, g) => s + (g.health?.outbox?.events ?? 0), 0));
      this.last = { at: now, counters, latency };
      recordPoints(this.d, timeSeries.hub.measurement, [fields], (f) => hubLine(this.d.instance, f, now));
      recordPoints(this.d, timeSeries.hubGateway.measurement, gateways, (g) => {
        const on = g.status.state === 'online';
        const devices = g.health?.devices ?? [];
        const outbox = on ? g.health?.outbox : undefined;
        return hubGatewayLine(
          this.d.instance,
          g.status,
          {
            online: int(on ? 1 : 0),
            since: int(g.status.since),
            devices: int(devices.length),
            // A gateway that is offline hears none of its devices.
            devices_silent: int(on ? devices.filter((x) => x.commLost).length : devices.length),
            ...(outbox ? { outbox_readings: int(outbox.readings), outbox_events: int(outbox.events), outbox_connected: int(outbox.connected ? 1 : 0) } : {}),
          },
          now,
        );
      });
    } catch (err) {
      metrics.inc('cosafe_timeseries_errors_total', { measurement: timeSeries.hub.measurement });
      this.d.logger.error({ err: (err as Error).message }, 'could not record the hub operations; trying again at the next interval');
    }
  }

  private counters(): Map<HubField, number> {
    const out = new Map<HubField, number>();
    for (const [field, names] of Object.entries(COUNTERS) as [HubField, readonly CounterName[]][]) out.set(field, names.reduce((sum, n) => sum + this.d.metrics.total(n), 0));
    return out;
  }
}
