import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { datasource } from './datasource.js';
import { id, tagIs } from './influxql.js';

/**
 * A template variable from InfluxQL `SHOW TAG VALUES`, several values at once
 * and "All". `allValue: '.*'` where the list can be long (sites, devices): All
 * is then `/^.*$/` rather than an alternation of thousands of names.
 */
export function tagVariable(o: { name: string; label: string; measurements: readonly string[]; tag: string; where?: string[]; allValue?: string }) {
  const where = o.where?.length ? ` WHERE ${o.where.join(' AND ')}` : '';
  const query = `SHOW TAG VALUES FROM ${o.measurements.map(id).join(', ')} WITH KEY = ${id(o.tag)}${where}`;
  const v = new dashboard.QueryVariableBuilder(o.name)
    .label(o.label)
    .datasource(datasource)
    .query(query)
    .definition(query)
    .multi(true)
    .includeAll(true)
    .current({ selected: true, text: 'All', value: '$__all' })
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalCaseInsensitiveAsc);
  if (o.allValue !== undefined) v.allValue(o.allValue);
  return v;
}

/** A condition on variables that came before (a device of the sites chosen). */
export const after = (...names: string[]): string[] => names.map((n) => tagIs(n));
