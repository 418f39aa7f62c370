import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import { datasource } from './datasource.js';

/**
 * An InfluxQL query of Grafana's InfluxDB data source in raw mode, as the SDK
 * has no builder for it: `query` is the text Grafana interpolates (template
 * variables in the browser, `$timeFilter` and `$__interval` in its backend).
 */
export interface InfluxQlQuery {
  refId: string;
  datasource: { type: string; uid: string };
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
  alias?: string;
  /** Annotations: which columns are the text and the tags. */
  textColumn?: string;
  tagsColumn?: string;
  _implementsDataqueryVariant(): void;
}

export class InfluxQl implements cog.Builder<cog.Dataquery> {
  private readonly q: InfluxQlQuery;

  constructor(query: string, refId = 'A') {
    this.q = { refId, datasource, query, rawQuery: true, resultFormat: 'time_series', _implementsDataqueryVariant() {} };
  }

  table(): this {
    this.q.resultFormat = 'table';
    return this;
  }

  /** Series names: `$tag_device`, `$col`. */
  alias(alias: string): this {
    this.q.alias = alias;
    return this;
  }

  annotationColumns(text: string, tags: readonly string[]): this {
    this.q.textColumn = text;
    this.q.tagsColumn = tags.join(',');
    return this;
  }

  build(): cog.Dataquery {
    return this.q as unknown as cog.Dataquery;
  }
}

/** An InfluxQL identifier, double-quoted: names from the contract stay names. */
export const id = (name: string): string => `"${name}"`;
/** A comma-separated identifier list, for SELECT and GROUP BY. */
export const ids = (...names: string[]): string => names.map(id).join(', ');
/** A tag matched against a template variable, in Grafana's regex form: `/^(a|b)$/` for several values, `/^.*$/` for All. */
export const tagIs = (tag: string, variable = tag): string => `${id(tag)} =~ /^$${variable}$/`;
