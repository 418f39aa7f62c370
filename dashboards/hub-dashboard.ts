import { timeSeries } from '../broker/contract/index.js';
import { NOW_LOOKBACK, RECORD_INTERVAL } from './datasource.js';
import { cosafeDashboard } from './dashboard-base.js';
import { id, ids, InfluxQl, tagIs } from './influxql.js';
import { hubRecordingPanel, PanelIds, row, statPanel, tablePanel, timeSeriesPanel, valueWords } from './panels.js';
import { tagVariable } from './variables.js';

const { hub, hubGateway } = timeSeries;
const instances = tagIs('instance');
const from = `FROM ${id(hub.measurement)} WHERE ${instances} AND $timeFilter`;
const perInterval = `GROUP BY time($__interval), ${id('instance')} fill(none)`;

/** Counters are recorded as what happened during each record's interval: summed per Grafana interval. */
const sums = (...fields: [string, string][]) => fields.map(([f, as]) => `sum(${id(f)}) AS ${id(as)}`).join(', ');
/** A rate per second: what was counted over the seconds it was counted in (right whatever the record interval). */
const rate = (field: string, as: string) => `sum(${id(field)}) / sum(${id('interval_seconds')}) AS ${id(as)}`;

/**
 * The hub operator's view, from the `hub` and `hub_gateway` points cloud-sync
 * records every cloudSync.timeSeries.intervalSeconds (the same figures as
 * /metrics, for an installation without Prometheus).
 */
export function hubDashboard() {
  const p = new PanelIds();
  const series = (title: string, description: string, select: string, o: { unit?: string; bars?: boolean; w?: number } = {}) =>
    timeSeriesPanel(p, {
      title,
      description,
      w: o.w ?? 12,
      h: 8,
      minInterval: RECORD_INTERVAL,
      ...(o.unit ? { unit: o.unit } : {}),
      ...(o.bars ? { bars: true } : {}),
      queries: [new InfluxQl(`SELECT ${select} ${from} ${perInterval}`).alias('$tag_instance $col')],
    });
  const gauge = (title: string, description: string, field: string, steps: { value: number | null; color: string }[]) =>
    statPanel(p, {
      title,
      description,
      w: 4,
      h: 4,
      minInterval: RECORD_INTERVAL,
      query: new InfluxQl(`SELECT sum(${id('v')}) FROM (SELECT last(${id(field)}) AS ${id('v')} FROM ${id(hub.measurement)} WHERE ${instances} AND time > now() - ${NOW_LOOKBACK} GROUP BY ${id('instance')})`),
      noValue: 'no data',
      steps,
    });
  return cosafeDashboard('cosafe-hub', 'cosafe / Hub operations', "The hub's own health: ingest, buffers and outboxes, drops, rejected points, alarm delivery, gateways.")
    .withVariable(tagVariable({ name: 'instance', label: 'cloud-sync', measurements: [hub.measurement], tag: 'instance' }))
    .withRow(row(p, 'Now'))
    .withPanel(hubRecordingPanel(p, 4))
    .withPanel(gauge('Gateways online', 'Gateways whose last status says online.', 'gateways_online', [{ value: null, color: 'blue' }]))
    .withPanel(gauge('Gateways offline', 'Gateways the hub knows whose last will came (offline).', 'gateways_offline', [{ value: null, color: 'green' }, { value: 1, color: 'red' }]))
    .withPanel(gauge('Buffered for InfluxDB', 'Points in the on-disk buffer, not yet written to InfluxDB.', 'buffered_points', [{ value: null, color: 'green' }, { value: 10_000, color: 'orange' }]))
    .withPanel(gauge('Deliveries pending', 'Alarm messages to fire departments not delivered yet.', 'pending_deliveries', [{ value: null, color: 'green' }, { value: 1, color: 'orange' }]))
    .withPanel(gauge('Unacknowledged alarms', 'Alarms of the whole hub waiting for a fire department.', 'alarms_unacknowledged', [{ value: null, color: 'green' }, { value: 1, color: 'red' }]))
    .withPanel(
      tablePanel(p, {
        title: 'Gateways now',
        description: `Every gateway the hub has heard of, from the last ${NOW_LOOKBACK}: online or not, its devices and what waits in its outbox.`,
        w: 24,
        h: 7,
        query: new InfluxQl(
          `SELECT last(${id('online')}) AS ${id('online')}, last(${id('devices')}) AS ${id('devices')}, last(${id('devices_silent')}) AS ${id('devices silent')}, last(${id('outbox_readings')}) AS ${id('outbox readings')}, last(${id('outbox_events')}) AS ${id('outbox events')} FROM ${id(hubGateway.measurement)} WHERE ${instances} AND time > now() - ${NOW_LOOKBACK} GROUP BY ${ids('site', 'gateway')}`,
        ),
        noValue: 'no gateway heard of',
        words: valueWords({ '1': { text: 'online', color: 'green' }, '0': { text: 'OFFLINE', color: 'red' } }),
      }),
    )
    .withRow(row(p, 'Ingest and storage'))
    .withPanel(series('Ingest rate', 'Readings and events received from gateways, per second.', `${rate('readings_received', 'readings/s')}, ${rate('events_received', 'events/s')}, ${rate('points_written', 'points written/s')}`, { unit: 'reqps' }))
    .withPanel(
      series(
        'Buffers and outboxes',
        "What waits: points for InfluxDB, alarm deliveries for fire departments, readings and events in the gateways' outboxes.",
        `mean(${id('buffered_points')}) AS ${id('InfluxDB buffer')}, mean(${id('pending_deliveries')}) AS ${id('deliveries pending')}, mean(${id('gateway_outbox_readings')}) AS ${id('gateway outbox readings')}, mean(${id('gateway_outbox_events')}) AS ${id('gateway outbox events')}`,
      ),
    )
    .withPanel(
      series(
        'Drops and rejected points',
        'Readings dropped (buffer or outbox full, oldest first), points InfluxDB rejected or line protocol could not carry, messages that broke the contract, failed writes.',
        sums(['points_dropped', 'dropped (buffer)'], ['outbox_dropped', 'dropped (outbox)'], ['points_rejected', 'rejected by InfluxDB'], ['points_refused', 'refused (unsafe)'], ['invalid_messages', 'invalid messages'], ['write_errors', 'write errors']),
        { bars: true },
      ),
    )
    .withPanel(series('Sequence holes and duplicates', 'Reading batches not (yet) received below the highest one, per gateway summed; batches received twice.', `mean(${id('sequence_holes')}) AS ${id('holes')}, ${sums(['duplicate_batches', 'duplicate batches'])}`))
    .withRow(row(p, 'Alarms and delivery'))
    .withPanel(
      series(
        'Delivery latency',
        "Alarm events from the device's time to the fire department's acknowledgement of receipt (2xx or PUBACK), per record interval: median, 95th and 99th percentile, estimated from the histogram as Prometheus does.",
        `max(${id('delivery_latency_p50_seconds')}) AS ${id('p50')}, max(${id('delivery_latency_p95_seconds')}) AS ${id('p95')}, max(${id('delivery_latency_p99_seconds')}) AS ${id('p99')}`,
        { unit: 's' },
      ),
    )
    .withPanel(series('Deliveries', 'Alarm messages delivered to fire departments and failed attempts (retried).', sums(['deliveries', 'delivered'], ['delivery_failures', 'failed attempts'], ['acks', 'acknowledged'], ['escalations', 'escalations']), { bars: true }))
    .withPanel(
      series(
        'Alarms by state',
        'Alarms of the whole hub by ISA-18.2 state.',
        `last(${id('alarms_unacknowledged')}) AS ${id('unacknowledged')}, last(${id('alarms_acknowledged')}) AS ${id('acknowledged')}, last(${id('alarms_returned_unacknowledged')}) AS ${id('returned, unacknowledged')}`,
      ),
    )
    .withPanel(series('Gateways', 'Gateways online and offline.', `last(${id('gateways_online')}) AS ${id('online')}, last(${id('gateways_offline')}) AS ${id('offline')}`))
    .withRow(row(p, 'Access and public'))
    .withPanel(series('Connections and refusals', 'Open broker connections; logins refused and actions denied by the ACL or the HTTP permissions.', `mean(${id('broker_connections')}) AS ${id('connections')}, ${sums(['auth_failures', 'logins refused'], ['denied', 'denied'])}`))
    .withPanel(series('Public alerts', 'Public alerts active, and the messages (Alert, Update, Cancel) sent to residents.', `last(${id('public_alerts_active')}) AS ${id('active')}, ${sums(['public_messages', 'messages'])}`));
}
