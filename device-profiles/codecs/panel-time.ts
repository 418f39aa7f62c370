import { DateTime } from 'luxon';

/** How far a panel's clock may be from the gateway's before its times are not believed. */
export const PANEL_CLOCK_AHEAD_MS = 5 * 60_000;
export const PANEL_CLOCK_BEHIND_MS = 24 * 3_600_000;

export interface PanelClockOptions {
  /** IANA zone of the panel's clock (device `timeZone`); default: the gateway host's. */
  timeZone?: string;
  /** Compare with the receive time (off for recorded samples, which are read long after). */
  checkClock?: boolean;
}

/**
 * The event time a panel printed, as epoch ms. A panel's clock is set by hand
 * and often wrong (reset to its factory date after a power loss, never moved to
 * summer time): a time that does not parse, or lies more than 5 min ahead of or
 * a day behind the gateway's clock, is not used; the line's receive time is,
 * and the error says why, so a fire department never sees an alarm dated 2000.
 */
export function panelTime(text: string | undefined, rule: { group: string; format: string }, receivedAt: number, o: PanelClockOptions = {}): { time: number; error?: string } {
  const value = text?.trim();
  if (!value) return { time: receivedAt, error: `time: the group "${rule.group}" is empty; used the receive time` };
  const zone = o.timeZone ?? 'system';
  let parsed = DateTime.fromFormat(value, rule.format, { zone, locale: 'en-US' });
  if (!parsed.isValid) return { time: receivedAt, error: `time: "${value}" does not read as "${rule.format}" (${parsed.invalidExplanation ?? parsed.invalidReason}); used the receive time` };
  // What the panel leaves out (the date, the year) is the receive time's, not today's: a recorded line is read later.
  const format = rule.format.replace(/'[^']*'/g, '');
  const hasDay = /[dLMo]/.test(format);
  const hasYear = /y/.test(format);
  const ref = DateTime.fromMillis(receivedAt, { zone });
  if (!hasDay) parsed = parsed.set({ year: ref.year, month: ref.month, day: ref.day });
  else if (!hasYear) parsed = parsed.set({ year: ref.year });
  // A line printed just before midnight (or New Year) and read just after belongs to the day (year) before.
  if (parsed.toMillis() - receivedAt > PANEL_CLOCK_AHEAD_MS && (!hasDay || !hasYear)) parsed = parsed.minus(hasDay ? { years: 1 } : { days: 1 });
  const time = parsed.toMillis();
  if (o.checkClock !== false && (time - receivedAt > PANEL_CLOCK_AHEAD_MS || receivedAt - time > PANEL_CLOCK_BEHIND_MS)) {
    const off = Math.round((time - receivedAt) / 60_000);
    return { time: receivedAt, error: `time: the panel's clock says ${value}, ${Math.abs(off)} min ${off > 0 ? 'ahead of' : 'behind'} the gateway's; used the receive time (set the panel's clock)` };
  }
  return { time };
}
