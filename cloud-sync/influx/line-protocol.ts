import { timeSeries, type AgencySummary, type AgencySummaryField, type AlarmEvent, type ReadingBatch } from '../../broker/contract/index.js';

/*
 * InfluxDB line protocol. Tags stay bounded (site, device, metric, profile);
 * values are fields. The timestamp is the device's reading time in ms, so a
 * resent reading overwrites itself: writes are idempotent.
 *
 * The contract already bounds every string that reaches here; this is the
 * second line of defence. Whatever line protocol can escape is escaped; what
 * it cannot carry is refused, point by point, so that no value can ever end a
 * line and start a point of its own (InfluxDB splits a request on "\n", in any
 * tag or field, quoted or not).
 */

/** Why a point was not turned into a line. */
export class UnsafePoint extends Error {}

/** Control characters: newline and carriage return end a line; none belong in a tag or a field. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** InfluxDB's timestamps are int64 nanoseconds: about ±292 years around 1970, here in ms. */
const MAX_TIME_MS = 9_223_372_036_854;

/**
 * A tag `key=value`: comma, equals sign and space are escaped. A backslash is
 * refused: InfluxDB versions differ in how they read one in a tag, and a
 * trailing one would escape the comma that follows. An empty value is refused
 * too (InfluxDB rejects the line).
 */
function tag(key: string, value: string): string {
  if (value === '') throw new UnsafePoint(`tag ${key} is empty`);
  if (CONTROL.test(value) || value.includes('\\')) throw new UnsafePoint(`tag ${key} holds a control character or a backslash`);
  return `${key}=${value.replace(/[,= ]/g, (c) => `\\${c}`)}`;
}

/** A string field `key="value"`: double quote and backslash are escaped; control characters refused. */
function text(key: string, value: string): string {
  if (CONTROL.test(value)) throw new UnsafePoint(`field ${key} holds a control character`);
  return `${key}="${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function float(key: string, value: number): string {
  if (!Number.isFinite(value)) throw new UnsafePoint(`field ${key} is not a finite number`);
  return `${key}=${value}`;
}

function timestamp(ms: number): string {
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > MAX_TIME_MS) throw new UnsafePoint('time is not an integer InfluxDB can store');
  return String(ms);
}

/** An integer field (`42i`), as opposed to a float. */
export interface IntField {
  readonly int: number;
}
export const int = (n: number): IntField => ({ int: Math.trunc(n) });
export type FieldValue = number | string | boolean | IntField;

/**
 * One line of the hub's own records (alarm lifecycle, public alerts, hub
 * operations): tags and fields by the contract's names, those given as
 * undefined or null left out. Throws `UnsafePoint` when a value cannot be
 * written safely, or when no field is left.
 */
export function pointLine<T extends string, F extends string>(
  measurement: string,
  tags: Partial<Record<T, string | null | undefined>>,
  fields: Partial<Record<F, FieldValue | null | undefined>>,
  timeMs: number,
): string {
  const t = Object.entries<string | null | undefined>(tags)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== null)
    // InfluxDB asks for tags in key order (fastest to index).
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => tag(k, v));
  const f = Object.entries<FieldValue | null | undefined>(fields)
    .filter((e): e is [string, FieldValue] => e[1] !== undefined && e[1] !== null)
    .map(([k, v]) => {
      if (typeof v === 'string') return text(k, v);
      if (typeof v === 'boolean') return `${k}=${v}`;
      if (typeof v === 'number') return float(k, v);
      if (!Number.isSafeInteger(v.int)) throw new UnsafePoint(`field ${k} is not an integer`);
      return `${k}=${v.int}i`;
    });
  if (f.length === 0) throw new UnsafePoint(`a ${measurement} point without fields`);
  return `${[measurement, ...t].join(',')} ${f.join(',')} ${timestamp(timeMs)}`;
}

/**
 * Appends one line per reading to `out`; returns why each point it refused was
 * refused (empty when every reading became a line).
 */
export function readingLines(batch: ReadingBatch, out: string[]): string[] {
  const refused: string[] = [];
  let bySeries: SeriesOfSite;
  try {
    bySeries = seriesOfSite(batch.site);
  } catch (err) {
    return batch.readings.map(() => (err as Error).message);
  }
  for (const r of batch.readings) {
    try {
      out.push(`${bySeries.of(r.device, r.metric, r.profile)} ${float('value', r.value)},${quotedFields(r.quality, r.unit)} ${timestamp(r.time)}`);
    } catch (err) {
      if (!(err instanceof UnsafePoint)) throw err;
      refused.push(err.message);
    }
  }
  return refused;
}

/*
 * A site's devices send the same few series again and again: their tags and
 * the quality and unit fields are escaped once and remembered, rather than run
 * through the checks and escapes at every reading (a tenth of the hub's
 * telemetry thread in a burst). Bounded: past CACHE_MAX entries (maps and
 * strings, a few hundred bytes each: at most about 15 MB) all is forgotten at
 * once and built again as readings come. A thousand devices with three
 * metrics each are 7,000.
 */
const CACHE_MAX = 60_000;
let cached = 0;
const sites = new Map<string, SeriesOfSite>();
const fieldPairs = new Map<string, Map<string, string>>();

function remember(): void {
  if (++cached <= CACHE_MAX) return;
  sites.clear();
  fieldPairs.clear();
  cached = 0;
}

/** The series of one site: `reading,site=…,device=…,metric=…,profile=…` by device, metric and profile. */
class SeriesOfSite {
  private readonly devices = new Map<string, Map<string, Map<string, string>>>();

  constructor(private readonly prefix: string) {}

  of(device: string, metric: string, profile: string): string {
    const profiles = inner(inner(this.devices, device), metric);
    let key = profiles.get(profile);
    if (key === undefined) {
      key = `${this.prefix},${tag('device', device)},${tag('metric', metric)},${tag('profile', profile)}`;
      profiles.set(profile, key);
      remember();
    }
    return key;
  }
}

/** The map under `key`, made (and counted) the first time. */
function inner<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let m = map.get(key);
  if (!m) {
    map.set(key, (m = new Map()));
    remember();
  }
  return m;
}

function seriesOfSite(site: string): SeriesOfSite {
  let s = sites.get(site);
  if (!s) {
    s = new SeriesOfSite(`${timeSeries.reading.measurement},${tag('site', site)}`);
    sites.set(site, s);
    remember();
  }
  return s;
}

/** `quality="…",unit="…"`. */
function quotedFields(quality: string, unit: string): string {
  const units = inner(fieldPairs, quality);
  let pair = units.get(unit);
  if (pair === undefined) {
    pair = `${text('quality', quality)},${text('unit', unit)}`;
    units.set(unit, pair);
    remember();
  }
  return pair;
}

/** One line for an alarm event; throws `UnsafePoint` when it cannot be written safely. */
export function eventLine(e: AlarmEvent): string {
  const fields = [text('state', e.state), text('event_id', e.eventId)];
  if (e.value !== undefined) fields.push(float('value', e.value));
  if (e.metric !== undefined) fields.push(text('metric', e.metric));
  if (e.text !== undefined) fields.push(text('text', e.text));
  if (e.chattering) fields.push('chattering=true');
  const tags = [tag('site', e.site), tag('device', e.device), tag('class', e.class), tag('condition', e.condition)];
  return `${timeSeries.event.measurement},${tags.join(',')} ${fields.join(',')} ${timestamp(e.time)}`;
}

/**
 * A district's agency summary as points: one `agency_summary` at its time, and
 * one `agency_alarms_daily` per day and class at the day's start, so that a
 * day's count is rewritten (not added to) every time it is recorded again.
 */
export function agencySummaryLines(s: AgencySummary): string[] {
  const f: Record<AgencySummaryField, number | null> = {
    sites_registered: s.sites.registered,
    sites_online: s.sites.online,
    gateways_online: s.gateways.online,
    gateways_offline: s.gateways.offline,
    devices_known: s.devices.known,
    devices_online: s.devices.online,
    devices_silent: s.devices.silent,
    devices_in_trouble: s.devices.inTrouble,
    alarms_unacknowledged: s.alarms.open.unacknowledged,
    alarms_acknowledged: s.alarms.open.acknowledged,
    alarms_returned_unacknowledged: s.alarms.open.returnedUnacknowledged,
    ack_count: s.timeToAcknowledge.count,
    ack_median_seconds: s.timeToAcknowledge.medianSeconds,
    ack_p90_seconds: s.timeToAcknowledge.p90Seconds,
    telemetry_drop_episodes: s.drops.telemetryEpisodes,
  };
  const fields = Object.entries(f)
    .filter((e): e is [string, number] => e[1] !== null)
    .map(([k, v]) => (k.endsWith('_seconds') ? float(k, v) : `${k}=${Math.trunc(v)}i`));
  const district = tag('district', s.district);
  const lines = [`${timeSeries.agencySummary.measurement},${district} ${fields.join(',')} ${timestamp(s.at)}`];
  for (const day of s.alarms.perDay) {
    const start = Date.parse(`${day.day}T00:00:00Z`);
    for (const [cls, count] of Object.entries(day.classes)) lines.push(`${timeSeries.agencyAlarmsDaily.measurement},${district},${tag('class', cls)} count=${count}i ${timestamp(start)}`);
  }
  return lines;
}
