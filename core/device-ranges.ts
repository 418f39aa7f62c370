import type { DeviceConfig, DeviceEntry, DeviceRangeConfig } from './config.js';

/**
 * Device ranges in `gateway.devices`: one entry names many devices of one
 * profile (`range: { from: th-0001, to: th-1000 }`), so that a fleet of 1,000
 * sensors is not 1,000 entries. Pure: the schema (config.ts) checks a range
 * with `parseRange`, and everything that needs the devices themselves (the
 * duplicate check, the gateway's bindings, check-config) expands the entries
 * with `expandDevices`.
 */

/** A range may name at most this many devices: a typo (`to: th-100000`) is an error, not 100,000 subscriptions and health rows. */
export const MAX_RANGE_DEVICES = 10_000;

/** In a range's `topic` and `name`, replaced by each device's id (every device of a range has its own topic). */
export const ID_PLACEHOLDER = '{id}';

/** A range, read: the ids are `prefix` and a number from `first` to `last`, zero-padded to `width` digits (0: not padded). */
export interface ParsedRange {
  prefix: string;
  first: number;
  last: number;
  width: number;
  count: number;
}

/** A configured device, with the entry of `gateway.devices` it comes from (for errors at the right line). */
export interface ExpandedDevice {
  device: DeviceConfig;
  /** Index of its entry in `gateway.devices`. */
  entry: number;
  /** The range it belongs to, if its entry is one. */
  range?: DeviceRangeConfig;
}

const NUMBERED = /^(.*?)(\d+)$/;

/** Reads `from` and `to`; a string says why the range is not one. */
export function parseRange(range: { from: string; to: string }): ParsedRange | string {
  const from = NUMBERED.exec(range.from);
  const to = NUMBERED.exec(range.to);
  if (!from || !to) return `from and to must end in a number (th-0001 to th-1000); "${!from ? range.from : range.to}" does not`;
  // The prefix is everything before the digits: "th-0001" is "th-" and 0001, whatever the digits are.
  const [fromPrefix, fromDigits] = [from[1]!, from[2]!];
  const [toPrefix, toDigits] = [to[1]!, to[2]!];
  if (fromPrefix !== toPrefix) return `from and to must differ only in their number: "${fromPrefix}" and "${toPrefix}" are different prefixes`;
  const padded = (d: string) => d.length > 1 && d.startsWith('0');
  const width = padded(fromDigits) || padded(toDigits) ? fromDigits.length : 0;
  if (width && fromDigits.length !== toDigits.length) {
    return `"${range.from}" and "${range.to}" must have as many digits (zero-padded: ${fromDigits.length} and ${toDigits.length}), so every id has the same width`;
  }
  const first = Number(fromDigits);
  const last = Number(toDigits);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last)) return 'the numbers of from and to are too large';
  if (last < first) return `"${range.to}" comes before "${range.from}": give the lower one as from`;
  const count = last - first + 1;
  if (count > MAX_RANGE_DEVICES) {
    return `${count.toLocaleString('en-US')} devices; a range names at most ${MAX_RANGE_DEVICES.toLocaleString('en-US')} (split it, or check the numbers)`;
  }
  return { prefix: fromPrefix, first, last, width, count };
}

/** The ids a range names, in order, zero padding kept. */
export function rangeIds(p: ParsedRange): string[] {
  return Array.from({ length: p.count }, (_, i) => `${p.prefix}${String(p.first + i).padStart(p.width, '0')}`);
}

/** `th-0001 to th-1000` */
export function describeRange(range: DeviceRangeConfig): string {
  return `${range.range.from} to ${range.range.to}`;
}

export function isRange(entry: DeviceEntry): entry is DeviceRangeConfig {
  return 'range' in entry;
}

/**
 * Every device the entries name, in order: a single entry as it is, a range
 * as one device per id, with `{id}` in its topic and name replaced. A range
 * that does not parse names no device (the schema has reported it already).
 */
export function expandDevices(entries: readonly DeviceEntry[]): ExpandedDevice[] {
  return entries.flatMap((entry, i): ExpandedDevice[] => {
    if (!isRange(entry)) return [{ device: entry, entry: i }];
    const parsed = parseRange(entry.range);
    if (typeof parsed === 'string') return [];
    const { range: _range, topic, name, ...shared } = entry;
    return rangeIds(parsed).map((id) => ({
      device: {
        id,
        ...shared,
        ...(topic !== undefined ? { topic: topic.replaceAll(ID_PLACEHOLDER, id) } : {}),
        ...(name !== undefined ? { name: name.replaceAll(ID_PLACEHOLDER, id) } : {}),
      },
      entry: i,
      range: entry,
    }));
  });
}

/** How many devices each range of the entries names, for check-config. */
export function rangeCounts(entries: readonly DeviceEntry[]): { entry: number; range: DeviceRangeConfig; count: number }[] {
  return entries.flatMap((entry, i) => {
    if (!isRange(entry)) return [];
    const parsed = parseRange(entry.range);
    return [{ entry: i, range: entry, count: typeof parsed === 'string' ? 0 : parsed.count }];
  });
}
