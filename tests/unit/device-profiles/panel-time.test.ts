import { describe, expect, it } from 'vitest';
import { decodeLine } from '../../../device-profiles/codecs/serial-lines.js';
import { panelTime } from '../../../device-profiles/codecs/panel-time.js';
import { Profile, type ProfileOf } from '../../../device-profiles/schema.js';

const panel = Profile.parse({
  id: 'timed-panel',
  vendor: 'Test',
  model: 'T-1',
  description: 'A panel that prints the time first, month by name',
  version: 1,
  transport: 'serial-lines',
  lines: [
    { match: '^(?<at>\\S+ \\S+) ALARM Z(?<zone>\\d+)', time: { group: 'at', format: 'dd-MMM-yy HH:mm:ss' }, signal: { key: 'fire-{zone}', class: 'fire', state: 'active' } },
    { match: '^(?<at>\\d\\d:\\d\\d) RESET', time: { group: 'at', format: 'HH:mm' }, resetAll: true },
  ],
}) as ProfileOf<'serial-lines'>;

const berlin = { timeZone: 'Europe/Berlin' };

describe("a panel's event time, from its own line", () => {
  it("reads the panel's local time in the device's zone (summer time included)", () => {
    const received = Date.UTC(2026, 6, 14, 8, 0, 30); // 10:00:30 in Berlin (CEST, UTC+2)
    const out = decodeLine(panel, '14-JUL-26 10:00:02 ALARM Z4', received, berlin);
    expect(out.errors).toEqual([]);
    expect(out.signals[0]).toMatchObject({ key: 'fire-4', time: Date.UTC(2026, 6, 14, 8, 0, 2) });
  });

  it('takes a time without a date printed just before midnight as yesterday', () => {
    const received = Date.UTC(2026, 0, 1, 23, 0, 20); // 00:00:20 on 2 January in Berlin (CET, UTC+1)
    const out = decodeLine(panel, '23:59 RESET', received, berlin);
    expect(out).toMatchObject({ resetAll: true, resetAt: Date.UTC(2026, 0, 1, 22, 59), errors: [] });
  });

  it("reads a far-off panel clock as it is: the gateway's deviceTime bound, the same for every device, decides", () => {
    const received = Date.UTC(2026, 6, 14, 8, 0, 30);
    const reset = decodeLine(panel, '01-JAN-00 00:00:12 ALARM Z1', received, berlin); // a panel back at its factory date
    expect(reset).toMatchObject({ errors: [], signals: [{ time: Date.UTC(1999, 11, 31, 23, 0, 12) }] });
  });

  it('keeps the event, at the receive time, when the time does not parse', () => {
    const received = Date.UTC(2026, 6, 14, 8, 0, 30);
    const out = decodeLine(panel, '32-JUL-26 10:00:02 ALARM Z2', received, berlin);
    expect(out.signals).toMatchObject([{ key: 'fire-2', class: 'fire', state: 'active', time: received }]);
    expect(out.errors[0]).toMatch(/^time: "32-JUL-26 10:00:02" does not read as "dd-MMM-yy HH:mm:ss"/);
    expect(panelTime('', { group: 'at', format: 'HH:mm' }, received).error).toMatch(/the group "at" is empty/);
  });
});
