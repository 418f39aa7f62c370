import { DateTime } from 'luxon';

/** A line read this far after a time without a date (or year) belongs to the day (year) before. */
const AHEAD_MS = 5 * 60_000;

export interface PanelClockOptions {
  /** IANA zone of the panel's clock (device `timeZone`); default: the gateway host's. */
  timeZone?: string;
}

/**
 * The event time a panel printed, as epoch ms; the receive time, with an error
 * saying why, when it does not parse. Whether the panel's clock is believed at
 * all (it is set by hand, and reset to its factory date by a power loss) is the
 * gateway's one rule for every device's time, gateway.deviceTime
 * (edge/device-time.ts), so a fire department never sees an alarm dated 2000.
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
  if (parsed.toMillis() - receivedAt > AHEAD_MS && (!hasDay || !hasYear)) parsed = parsed.minus(hasDay ? { years: 1 } : { days: 1 });
  return { time: parsed.toMillis() };
}
