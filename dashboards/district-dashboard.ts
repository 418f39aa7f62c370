import { timeSeries } from '../broker/contract/index.js';
import { NOW_LOOKBACK, RECORD_INTERVAL } from './datasource.js';
import { cosafeDashboard } from './dashboard-base.js';
import { id, ids, InfluxQl, tagIs } from './influxql.js';
import { ALARM_STATE_WORDS, hubRecordingPanel, openAlarmsCountQuery, openAlarmsQuery, PanelIds, row, statPanel, tablePanel, timeSeriesPanel } from './panels.js';
import { tagVariable } from './variables.js';

const { alarm, agencySummary, publicAlert } = timeSeries;
const districts = tagIs('district');
const transitions = `${districts} AND ${id('record')} = 'transition'`;
/** Public alerts are looked for this far back: one still active started at most this long ago. */
const PUBLIC_LOOKBACK = '30d';

/**
 * A district's view (its fire department, the agency): alarms per class over
 * time, how fast they are acknowledged, the sites with trouble and the alarms
 * open now, devices silent, public alerts.
 */
export function districtDashboard() {
  const p = new PanelIds();
  const red = [{ value: null, color: 'green' }, { value: 1, color: 'red' }];
  return cosafeDashboard('cosafe-district', 'cosafe / District', "A district's alarms, their acknowledgement, sites with trouble and public alerts (fire departments, agencies).")
    .withVariable(tagVariable({ name: 'district', label: 'District', measurements: [agencySummary.measurement, alarm.measurement], tag: 'district' }))
    .withRow(row(p, 'Now'))
    .withPanel(hubRecordingPanel(p, 4))
    .withPanel(statPanel(p, { title: 'Alarms open now', description: `Alarms of the district that are not normal (ISA-18.2), from the last ${NOW_LOOKBACK}.`, w: 5, h: 4, query: new InfluxQl(openAlarmsCountQuery(districts)), noValue: '0', steps: red }))
    .withPanel(
      statPanel(p, { title: 'Waiting for acknowledgement', description: 'Alarms of the district no fire department has acknowledged yet.', w: 5, h: 4, query: new InfluxQl(openAlarmsCountQuery(districts, 'unacknowledged')), noValue: '0', steps: red }),
    )
    .withPanel(
      statPanel(p, {
        title: 'Sites with trouble now',
        description: 'Sites with a trouble or supervisory alarm open (a silent device, a closed valve, low pressure).',
        w: 5,
        h: 4,
        query: new InfluxQl(
          `SELECT count(${id('n')}) FROM (SELECT sum(${id('n')}) AS ${id('n')} FROM (SELECT last(${id('open')}) AS ${id('n')} FROM ${id(alarm.measurement)} WHERE ${districts} AND ${id('class')} =~ /^(trouble|supervisory)$/ AND time > now() - ${NOW_LOOKBACK} GROUP BY ${ids('site', 'device', 'condition')}) GROUP BY ${id('site')}) WHERE ${id('n')} > 0`,
        ),
        noValue: '0',
        steps: [{ value: null, color: 'green' }, { value: 1, color: 'orange' }],
      }),
    )
    .withPanel(
      statPanel(p, {
        title: 'Public alerts active',
        description: `Alerts for residents active now (started in the last ${PUBLIC_LOOKBACK}).`,
        w: 5,
        h: 4,
        query: new InfluxQl(`SELECT sum(${id('active')}) FROM ${id(publicAlert.measurement)} WHERE ${districts} AND time > now() - ${PUBLIC_LOOKBACK}`),
        noValue: '0',
        steps: [{ value: null, color: 'green' }, { value: 1, color: 'red' }],
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Alarms open now',
        description: 'Every alarm of the district that is not normal, with its state and how long it has been open (seconds).',
        w: 12,
        h: 8,
        query: new InfluxQl(openAlarmsQuery(districts)),
        noValue: 'nothing open',
        words: ALARM_STATE_WORDS,
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Trouble now, by site',
        description: 'Trouble and supervisory alarms open now, by site, device and condition.',
        w: 12,
        h: 8,
        query: new InfluxQl(openAlarmsQuery(`${districts} AND ${id('class')} =~ /^(trouble|supervisory)$/`)),
        noValue: 'no trouble',
        words: ALARM_STATE_WORDS,
      }),
    )
    .withRow(row(p, 'Over time'))
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Alarms per class',
        description: 'New alarm occurrences (ISA-18.2: normal or returned to active), per class; walk tests left out.',
        w: 12,
        h: 8,
        bars: true,
        stacked: true,
        queries: [
          new InfluxQl(`SELECT count(${id('alarm_id')}) FROM ${id(alarm.measurement)} WHERE ${transitions} AND ${id('change')} = 'activate' AND ${id('test')} = 0 AND $timeFilter GROUP BY time($__interval), ${id('class')} fill(none)`).alias(
            '$tag_class',
          ),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Time to acknowledge',
        description: 'From activation to a fire department\'s acknowledgement, per interval: mean and longest.',
        w: 12,
        h: 8,
        unit: 's',
        queries: [
          new InfluxQl(
            `SELECT mean(${id('ack_seconds')}) AS ${id('mean')}, max(${id('ack_seconds')}) AS ${id('longest')} FROM ${id(alarm.measurement)} WHERE ${transitions} AND $timeFilter GROUP BY time($__interval) fill(none)`,
          ),
        ],
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Time to acknowledge, per district',
        description: "The agencies' statistics over their window (cloudSync.agency.windowDays): acknowledgements counted, median and 90th percentile.",
        w: 12,
        h: 6,
        unit: 's',
        query: new InfluxQl(
          `SELECT last(${id('ack_count')}) AS ${id('acknowledged')}, last(${id('ack_median_seconds')}) AS ${id('median')}, last(${id('ack_p90_seconds')}) AS ${id('p90')} FROM ${id(agencySummary.measurement)} WHERE ${districts} AND $timeFilter GROUP BY ${id('district')}`,
        ),
        noValue: 'no summary in the time range',
      }),
    )
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Alarms open, by state',
        description: "The district's open alarms by ISA-18.2 state, from the agency summaries.",
        w: 12,
        h: 6,
        stacked: true,
        minInterval: '1m',
        queries: [
          new InfluxQl(
            `SELECT last(${id('alarms_unacknowledged')}) AS ${id('unacknowledged')}, last(${id('alarms_acknowledged')}) AS ${id('acknowledged')}, last(${id('alarms_returned_unacknowledged')}) AS ${id('returned, unacknowledged')} FROM ${id(agencySummary.measurement)} WHERE ${districts} AND $timeFilter GROUP BY time($__interval), ${id('district')} fill(previous)`,
          ).alias('$tag_district $col'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Sites and devices',
        description: 'Sites online of those registered, devices silent and in trouble, from the agency summaries.',
        w: 12,
        h: 8,
        minInterval: '1m',
        queries: [
          new InfluxQl(
            `SELECT last(${id('sites_registered')}) AS ${id('sites registered')}, last(${id('sites_online')}) AS ${id('sites online')}, last(${id('devices_silent')}) AS ${id('devices silent')}, last(${id('devices_in_trouble')}) AS ${id('devices in trouble')} FROM ${id(agencySummary.measurement)} WHERE ${districts} AND $timeFilter GROUP BY time($__interval), ${id('district')} fill(previous)`,
          ).alias('$tag_district $col'),
        ],
      }),
    )
    .withPanel(
      tablePanel(p, {
        title: 'Public alerts',
        description: 'Alerts for residents that started in the time range: hazard, the centre H3 cell of their area, state, and how long they lasted (s).',
        w: 12,
        h: 8,
        query: new InfluxQl(
          `SELECT ${ids('alert_id', 'msg_type', 'state', 'confirmed', 'messages', 'cells', 'resolution', 'duration_seconds')} FROM ${id(publicAlert.measurement)} WHERE ${districts} AND $timeFilter GROUP BY ${ids('district', 'hazard', 'cell')}`,
        ),
        noValue: 'no public alert in the time range',
      }),
    )
    .withPanel(
      timeSeriesPanel(p, {
        title: 'Acknowledgements',
        description: 'Acknowledgements by fire departments per interval, per district.',
        w: 24,
        h: 6,
        bars: true,
        minInterval: RECORD_INTERVAL,
        queries: [
          new InfluxQl(`SELECT count(${id('alarm_id')}) FROM ${id(alarm.measurement)} WHERE ${transitions} AND ${id('change')} = 'acknowledge' AND $timeFilter GROUP BY time($__interval), ${id('district')} fill(none)`).alias(
            '$tag_district',
          ),
        ],
      }),
    );
}
