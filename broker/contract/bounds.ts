import { ID_PATTERN } from './topics.js';

/*
 * The bounds of the contract's numbers and free text, and the two helpers the
 * edge uses to meet them (`cleanText`, `conditionKey`), so that what a gateway
 * builds from a device's own words always passes the schema cloud-sync checks.
 */

/** 2100-01-01T00:00:00Z: later than any real clock, well inside what InfluxDB stores (up to 2262-04-11). */
export const MAX_EPOCH_MS = 4_102_444_800_000;

/** Sequence numbers stay exact integers in JSON and JavaScript (2^53 - 1). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Longest free text of an event (a panel's line, a device's location). */
export const MAX_TEXT = 200;

/**
 * Characters free text may not hold: C0 and C1 control characters (newline,
 * carriage return, tab, escape sequences that drive a terminal), the Unicode
 * line and paragraph separators, and the bidirectional overrides and isolates
 * that make a page show text in another order than it is stored (CVE-2021-42574,
 * "Trojan Source").
 */
export const TEXT_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const TEXT_FORBIDDEN_ALL = new RegExp(TEXT_FORBIDDEN.source, 'g');

/**
 * A device's words made fit for the contract: every forbidden character becomes
 * a space (the rest, spacing included, stays the device's own), and the text is
 * cut to `max` UTF-16 units without splitting a surrogate pair.
 */
export function cleanText(text: string, max = MAX_TEXT): string {
  let s = text.replace(TEXT_FORBIDDEN_ALL, ' ');
  if (s.length > max) {
    s = s.slice(0, max);
    // A high surrogate left alone at the end would be half a character.
    if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1);
  }
  return s;
}

/**
 * The condition key of a signal, as the contract wants it (an id: it becomes an
 * InfluxDB tag and part of the event id). A key built from a profile's template
 * and a panel's capture groups (`fire-zone-{zone}`) may hold anything the panel
 * printed: every other character becomes "_", a key must start with a letter or
 * digit, and a key longer than 64 is cut and ends with a hash of the whole, so
 * two long keys that share a beginning stay two conditions (and a restore of one
 * never clears the other). Keys that already conform are returned unchanged.
 */
export function conditionKey(raw: string): string {
  if (ID_PATTERN.test(raw)) return raw;
  let key = raw.replace(/[^A-Za-z0-9_.-]/g, '_');
  if (!/^[A-Za-z0-9]/.test(key)) key = `k${key}`;
  if (key.length > 64) key = `${key.slice(0, 55)}-${fnv1a(raw)}`;
  return key;
}

/** FNV-1a, 32 bits, as 8 hex digits: a short, stable tag of a string (not a security hash). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
