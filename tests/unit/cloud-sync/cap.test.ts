import { create } from 'xmlbuilder2';
import { describe, expect, it } from 'vitest';
import { buildCapAlert, formatCapTime, formatReferences, isCapToken, type CapAlertInput } from '../../../cloud-sync/alarms/cap.js';
import { alarmEvent } from '../../helpers/alarm-events.js';

const site = { id: 'bakery-12', name: 'Bakery <Müller> & Sons', address: 'Hauptstr. 12, Berlin', location: { lat: 52.53, lon: 13.38 }, district: 'north', hazards: ['LPG tank'], contacts: [] };
const input = (o: Partial<CapAlertInput> = {}): CapAlertInput => ({
  identifier: 'evt_1',
  sender: 'cosafe-hub',
  sent: Date.UTC(2026, 11, 1, 12, 0, 0, 500),
  status: 'Actual',
  msgType: 'Alert',
  incident: 'alm_1.1',
  alarmId: 'alm_1',
  district: 'north',
  event: alarmEvent({ site: 'bakery-12', location: '1F <kitchen>' }),
  site,
  utcOffsetMinutes: 60,
  ...o,
});
/** The elements of a message, as [path, text] pairs. */
const elements = (xml: string) => create(xml).end({ format: 'object' }) as { alert: Record<string, unknown> & { info: Record<string, unknown> & { area?: Record<string, unknown> } } };

describe('CAP 1.2 messages', () => {
  it('writes sent with an explicit offset and no fractions, and UTC as -00:00 (§3.3.2)', () => {
    const t = Date.UTC(2026, 11, 1, 12, 0, 0, 999);
    expect(formatCapTime(t, 60)).toBe('2026-12-01T13:00:00+01:00');
    expect(formatCapTime(t, -330)).toBe('2026-12-01T06:30:00-05:30');
    expect(formatCapTime(t, 0)).toBe('2026-12-01T12:00:00-00:00');
    expect(formatCapTime(t, 0)).not.toContain('Z');
  });

  it('writes references as space-separated sender,identifier,sent (§3.2.1)', () => {
    const refs = [
      { sender: 'hub', identifier: 'evt_1', sent: Date.UTC(2026, 0, 2, 3, 4, 5) },
      { sender: 'hub', identifier: 'evt_1.u1', sent: Date.UTC(2026, 0, 2, 3, 5, 5) },
    ];
    expect(formatReferences(refs, 0)).toBe('hub,evt_1,2026-01-02T03:04:05-00:00 hub,evt_1.u1,2026-01-02T03:05:05-00:00');
  });

  it('refuses an identifier or sender with a space, comma, < or & (§3.2.1)', () => {
    for (const bad of ['a b', 'a,b', 'a<b', 'a&b']) expect(isCapToken(bad)).toBe(false);
    expect(() => buildCapAlert(input({ identifier: 'evt 1' }))).toThrow(/identifier/);
    expect(() => buildCapAlert(input({ sender: 'cosafe,hub' }))).toThrow(/sender/);
  });

  it('has every element the specification requires, in the namespace of 1.2', () => {
    const xml = buildCapAlert(input());
    expect(xml).toContain('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">');
    const { alert } = elements(xml);
    // §3.2.1 alert: identifier, sender, sent, status, msgType, scope (and restriction with Restricted).
    expect(alert).toMatchObject({ identifier: 'evt_1', sender: 'cosafe-hub', sent: '2026-12-01T13:00:00+01:00', status: 'Actual', msgType: 'Alert', scope: 'Restricted' });
    expect(alert.restriction).toBe('fire departments of district north');
    // §3.2.2 info: category, event, urgency, severity, certainty.
    expect(alert.info).toMatchObject({ category: 'Fire', event: 'Fire alarm', urgency: 'Immediate', severity: 'Severe', certainty: 'Likely' });
    // §3.2.4 area: areaDesc, and the site's position as a circle.
    expect(alert.info.area).toMatchObject({ circle: '52.53,13.38 0.05' });
    expect(String(alert.info.area?.areaDesc)).toContain('Hauptstr. 12, Berlin');
    // What came from a person or a device is escaped, never markup.
    expect(xml).toContain('Bakery &lt;Müller&gt; &amp; Sons');
    expect(xml).toContain('1F &lt;kitchen&gt;');
    expect(alert.info.description).toContain('Hazards: LPG tank');
    expect(alert).not.toHaveProperty('references');
  });

  it('references the alert from an Update and a Cancel, and marks a Cancel as over', () => {
    const references = [{ sender: 'cosafe-hub', identifier: 'evt_1', sent: Date.UTC(2026, 11, 1, 12, 0, 0) }];
    const update = elements(buildCapAlert(input({ identifier: 'evt_1.u1', msgType: 'Update', references, note: 'escalation step 1' }))).alert;
    expect(update).toMatchObject({ msgType: 'Update', references: 'cosafe-hub,evt_1,2026-12-01T13:00:00+01:00', note: 'escalation step 1' });
    const cancel = elements(buildCapAlert(input({ identifier: 'evt_2', msgType: 'Cancel', references }))).alert;
    expect(cancel).toMatchObject({ msgType: 'Cancel', references: 'cosafe-hub,evt_1,2026-12-01T13:00:00+01:00' });
    expect(cancel.info).toMatchObject({ responseType: 'AllClear', urgency: 'Past' });
  });

  it('says plainly when the site is not registered, and has no area then', () => {
    const { alert } = elements(buildCapAlert(input({ site: undefined, district: undefined })));
    expect(alert.restriction).toContain('district unknown');
    expect(alert.info.description).toContain('NOT REGISTERED');
    expect(alert.info.area).toBeUndefined();
  });
});
