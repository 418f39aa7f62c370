import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { timeSeries } from '../broker/contract/index.js';
import { datasource, NOW_LOOKBACK, RECORD_INTERVAL } from './datasource.js';
import { id, ids, InfluxQl, tagIs } from './influxql.js';
import { ALARM_STATE_WORDS, hubRecordingPanel, openAlarmsCountQuery, openAlarmsQuery, PanelIds, row, stateTimelinePanel, statPanel, tablePanel, timeSeriesPanel, valueWords } from './panels.js';
import { after, tagVariable } from './variables.js';
import { cosafeDashboard } from './dashboard-base.js';

const { reading, event, alarm } = timeSeries;
const sites = tagIs('site');
const devices = `${sites} AND ${tagIs('device')}`;
const readings = `${devices} AND ${tagIs('metric')}`;

/** An annotation of the site's events: alarms, their clears, trouble, acknowledgements. */
function eventAnnotation(name: string, color: string, where: string, measurement: string = event.measurement, text = 'text', always = 'event_id') {
  // `always`: a field every point has, so that a point without text is still a row (tags alone make none).
  const q = new InfluxQl(`SELECT ${id(text)}, ${id(always)}, ${ids('device', 'condition', 'class')} FROM ${id(measurement)} WHERE ${sites} AND ${where} AND $timeFilter`, name).annotationColumns(text, ['device', 'condition', 'class']);
  return new dashboard.AnnotationQueryBuilder().name(name).datasource(datasource).enable(true).iconColor(color).target(q);
}

/**
 * A building's view (the owner, the site's fire department): every device's
 * latest value and trend, what is in alarm, silent or in trouble now, and the
 * alarms, clears and acknowledgements as annotations on every graph.
 */
export function siteDashboard() {
  const p = new PanelIds();
  const trouble = `${id('class')} =~ /^(trouble|supervisory)$/`;
  return cosafeDashboard('cosafe-site', 'cosafe / Site', 'A building: its devices, their values and trends, its alarms and what is silent or in trouble.')
    .withVariable(tagVariable({ name: 'site', label: 'Site', measurements: [reading.measurement, event.measurement], tag: 'site', allValue: '.*' }))
    .withVariable(tagVariable({ name: 'device', label: 'Device', measurements: [reading.measurement, event.measurement], tag: 'device', where: after('site'), allValue: '.*' }))
    .withVariable(tagVariable({ name: 'metric', label: 'Metric', measurements: [reading.measurement], tag: 'metric', where: after('site', 'device'), allValue: '.*' }))
    .annotation(eventAnnotation('Alarms', 'red', `${id('state')} = 'active' AND ${id('class')} !~ /^(trouble|supervisory)$/`))
    .annotation(eventAnnotation('Clears', 'green', `${id('state')} = 'cleared'`))
    .annotation(eventAnnotation('Trouble', 'orange', `${id('state')} = 'active' AND ${trouble}`))
    .annotation(eventAnnotation('Acknowledged', 'blue', `${id('record')} = 'transition' AND ${id('change')} = 'acknowledge'`, alarm.measurement, 'channel', 'alarm_id'))
    .withRow(row(p, 'Now'))
    .withPanel(hubRecordingPanel(p, 4))
    .withPanel(
      statPanel(p, {
        title: 'Alarms open now',
        description: `Alarms of the chosen sites that are not normal (ISA-18.2), of every class, from the hub's lifecycle in the last ${NOW_LOOKBACK}.`,
        w: 5,
        h: 4,
        query: new InfluxQl(openAlarmsCountQuery(devices)),
        noValue: '0',
        steps: [{ value: null, color: 'green' }, { value: 1, color: 'red' }],
      }),
    )
    .withPanel(
      statPanel(p, {
        title: 'Waiting for acknowledgement',
        description: 'Alarms no fire department has acknowledged yet (active or returned to normal).',
        w: 5,
        h: 4,
        query: new InfluxQl(openAlarmsCountQuery(devices, 'unacknowledged')),
        noValue: '0',
        steps: [{ value: null, color: 'green' }, { value: 1, color: 'red' }],
      }),
    )
    .withPanel(
      statPanel(p, {
        title: 'Devices silent or in trouble',
        description: 'Trouble and supervisory alarms open now (a device silent for too long is comm-lost trouble).',
        w: 5,
        h: 4,
        query: new InfluxQl(openAlarmsCountQuery(`${devices} AND ${trouble}`)),
        noValue: '0',
        steps: [{ value: null, color: 'green' }, { value: 1, color: 'orange' }],
      }),
    )
    .withPanel(
      statPanel(p, {
        title: 'Readings in range',
        description: 'How many readings of the chosen devices and metrics the time range holds.',
        w: 5,
        h: 4,
        query: new InfluxQl(`SELECT count(${id('value')}) FROM ${id(reading.measurement)} WHERE ${readings} AND $timeFilter`),
        noValue: 'none',
        steps: [{ value: null, color: 'red' }, { value: 1, color: 'green' }],
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Alarms, trouble and silent devices now',
        description: `Every alarm of the chosen sites that is not normal now, with its state and how long it has been open (seconds). A device silent for too long shows as condition comm-lost.`,
        w: 12,
        h: 8,
        query: new InfluxQl(openAlarmsQuery(devices)),
        noValue: 'nothing open',
        words: ALARM_STATE_WORDS,
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Latest value of every device',
        description: 'The last reading of each device and metric in the time range, and when it came: an old time is a device that went quiet.',
        w: 12,
        h: 8,
        query: new InfluxQl(`SELECT last(${id('value')}) AS ${id('value')} FROM ${id(reading.measurement)} WHERE ${readings} AND $timeFilter GROUP BY ${ids('site', 'device', 'metric')}`),
        noValue: 'no readings in the time range',
      }),
    )
    .withRow(row(p, 'Trends'))
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Readings',
        description: 'Every chosen device and metric, averaged per interval.',
        w: 24,
        h: 9,
        queries: [new InfluxQl(`SELECT mean(${id('value')}) FROM ${id(reading.measurement)} WHERE ${readings} AND $timeFilter GROUP BY time($__interval), ${ids('site', 'device', 'metric')} fill(none)`).alias('$tag_device $tag_metric')],
      }),
    )
    .withPanel(
      stateTimelinePanel(p, {
        title: 'Alarm state',
        description: 'Open (red) or normal (green), per device and condition, from the hub\'s lifecycle.',
        w: 12,
        h: 8,
        query: new InfluxQl(`SELECT last(${id('open')}) FROM ${id(alarm.measurement)} WHERE ${devices} AND $timeFilter GROUP BY time($__interval), ${ids('device', 'condition')} fill(previous)`).alias('$tag_device $tag_condition'),
        words: valueWords({ '1': { text: 'open', color: 'red' }, '0': { text: 'normal', color: 'green' } }),
        minInterval: RECORD_INTERVAL,
      }),
    )
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Events of the edge',
        description: 'Alarm, supervisory and trouble events raised and cleared at the site, per class and state.',
        w: 12,
        h: 8,
        bars: true,
        stacked: true,
        queries: [new InfluxQl(`SELECT count(${id('event_id')}) FROM ${id(event.measurement)} WHERE ${devices} AND $timeFilter GROUP BY time($__interval), ${ids('class', 'state')} fill(none)`).alias('$tag_class $tag_state')],
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Event log',
        description: 'The latest events of the edge in the time range, newest first.',
        w: 24,
        h: 8,
        query: new InfluxQl(`SELECT ${ids('state', 'text', 'value', 'metric', 'event_id')} FROM ${id(event.measurement)} WHERE ${devices} AND $timeFilter GROUP BY ${ids('site', 'device', 'class', 'condition')} ORDER BY time DESC LIMIT 200`),
        noValue: 'no events in the time range',
      }),
    );
}
