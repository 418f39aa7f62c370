import { timeSeries } from '../broker/contract/index.js';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { datasource, NOW_LOOKBACK, RECORD_INTERVAL } from './datasource.js';
import { id, ids, InfluxQl } from './influxql.js';

/** What every panel of ours has: an id unique in its dashboard, the data source, a size on the 24-column grid. */
interface Sized {
  title: string;
  description: string;
  /** Width in grid columns (of 24) and height in rows. */
  w: number;
  h: number;
}

/** Numbers panels one after the other, so that ids are unique in a dashboard and stable from one generation to the next. */
export class PanelIds {
  private n = 0;
  next(): number {
    return ++this.n;
  }
}

function base<B extends { id(n: number): B; title(t: string): B; description(d: string): B; datasource(d: typeof datasource): B; span(w: number): B; height(h: number): B }>(b: B, ids: PanelIds, o: Sized): B {
  return b.id(ids.next()).title(o.title).description(o.description).datasource(datasource).span(o.w).height(o.h);
}

const thresholds = (steps: { value: number | null; color: string }[]) => new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);

/** A value mapping from numbers (as text) to words and colours: the state first, in words and colour. */
export function valueWords(words: Record<string, { text: string; color: string }>): dashboard.ValueMapping[] {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  Object.entries(words).forEach(([value, w], index) => (options[value] = { ...w, index }));
  return [{ type: dashboard.MappingType.ValueToText, options }];
}

export function timeSeriesPanel(ids: PanelIds, o: Sized & { queries: InfluxQl[]; unit?: string; bars?: boolean; stacked?: boolean; minInterval?: string }) {
  const p = base(new timeseries.PanelBuilder(), ids, o)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
  if (o.minInterval) p.interval(o.minInterval);
  if (o.unit) p.unit(o.unit);
  if (o.bars) p.drawStyle(common.GraphDrawStyle.Bars).fillOpacity(80).lineWidth(1);
  if (o.stacked) p.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  for (const q of o.queries) p.withTarget(q);
  return p;
}

export function statPanel(
  ids: PanelIds,
  o: Sized & { query: InfluxQl; unit?: string; noValue?: string; steps?: { value: number | null; color: string }[]; words?: dashboard.ValueMapping[]; minInterval?: string },
) {
  const p = base(new stat.PanelBuilder(), ids, o)
    .withTarget(o.query)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None);
  if (o.unit) p.unit(o.unit);
  if (o.noValue) p.noValue(o.noValue);
  if (o.steps) p.thresholds(thresholds(o.steps));
  if (o.words) p.mappings(o.words);
  if (o.minInterval) p.interval(o.minInterval);
  return p;
}

export function tablePanel(ids: PanelIds, o: Sized & { query: InfluxQl; noValue?: string; words?: dashboard.ValueMapping[]; unit?: string }) {
  const p = base(new table.PanelBuilder(), ids, o).withTarget(o.query.table()).cellHeight(common.TableCellHeight.Sm).filterable(true);
  if (o.noValue) p.noValue(o.noValue);
  if (o.words) p.mappings(o.words);
  if (o.unit) p.unit(o.unit);
  return p;
}

export function stateTimelinePanel(ids: PanelIds, o: Sized & { query: InfluxQl; words: dashboard.ValueMapping[]; minInterval?: string }) {
  const p = base(new statetimeline.PanelBuilder(), ids, o).withTarget(o.query).mappings(o.words).showValue(common.VisibilityMode.Never);
  if (o.minInterval) p.interval(o.minInterval);
  return p;
}

/** A row: a panel too, so it takes the next id (Grafana wants every panel id unique, rows included). */
export function row(ids: PanelIds, title: string) {
  return new dashboard.RowBuilder(title).id(ids.next());
}

const hub = timeSeries.hub;

/**
 * Whether the hub records at all: without its points, "no open alarm" below
 * could mean "nobody is writing", and a dashboard must never show a false all
 * clear. Red and in words when the hub's last point is older than the lookback.
 */
export function hubRecordingPanel(panelIds: PanelIds, w = 6) {
  return statPanel(panelIds, {
    title: 'Hub recording',
    description: `Whether cloud-sync wrote its operations point (measurement ${hub.measurement}) in the last ${NOW_LOOKBACK}. If not, the "now" panels of this dashboard cannot be trusted: check the hub and its InfluxDB writer.`,
    w,
    h: 4,
    query: new InfluxQl(`SELECT last(${id('interval_seconds')}) FROM ${id(hub.measurement)} WHERE time > now() - ${NOW_LOOKBACK}`),
    noValue: 'NOT RECORDING',
    words: [{ type: dashboard.MappingType.RangeToText, options: { from: 0, to: 1e9, result: { text: 'recording', color: 'green' } } }],
    steps: [{ value: null, color: 'red' }],
    minInterval: RECORD_INTERVAL,
  });
}

const alarm = timeSeries.alarm;

/**
 * The alarms open now (ISA-18.2: not normal), from the last `NOW_LOOKBACK` of
 * `alarm` points: the latest point of each alarm (site, device, condition) is
 * an `open` snapshot while it stays open, or the transition that returned it to normal.
 */
export function openAlarmsQuery(where: string, select = `${id('state')}, ${id('open_seconds')}, ${id('unacknowledged')}`): string {
  const key = ids('district', 'site', 'device', 'condition', 'class');
  const inner = `SELECT last(${id('open')}) AS ${id('open')}, last(${id('state')}) AS ${id('state')}, last(${id('open_seconds')}) AS ${id('open_seconds')}, last(${id('unacknowledged')}) AS ${id('unacknowledged')} FROM ${id(alarm.measurement)} WHERE ${where} AND time > now() - ${NOW_LOOKBACK} GROUP BY ${key}`;
  return `SELECT ${select} FROM (${inner}) WHERE ${id('open')} = 1 GROUP BY ${key}`;
}

/** How many of the alarms open now (optionally only those awaiting acknowledgement). */
export function openAlarmsCountQuery(where: string, field: 'open' | 'unacknowledged' = 'open'): string {
  const inner = `SELECT last(${id(field)}) AS ${id('n')} FROM ${id(alarm.measurement)} WHERE ${where} AND time > now() - ${NOW_LOOKBACK} GROUP BY ${ids('site', 'device', 'condition')}`;
  return `SELECT sum(${id('n')}) FROM (${inner})`;
}

export const ALARM_STATE_WORDS = valueWords({
  'active-unacknowledged': { text: 'ACTIVE, not acknowledged', color: 'red' },
  'active-acknowledged': { text: 'active, acknowledged', color: 'orange' },
  'returned-unacknowledged': { text: 'returned, not acknowledged', color: 'yellow' },
  normal: { text: 'normal', color: 'green' },
});
