import { describe, expect, it } from 'vitest';
import type { AlarmEvent, ReadingBatch } from '../../../broker/contract/index.js';
import { UnsafePoint, eventLine, readingLines } from '../../../cloud-sync/influx/line-protocol.js';

const T = 1_764_190_000_000;
const reading = { device: 'temp-1', metric: 'temperature', value: 21.5, unit: 'Cel', time: T, quality: 'good' as const, profile: 'mqtt-temperature-humidity' };
const batch = (readings: ReadingBatch['readings']): ReadingBatch => ({ v: 1, gateway: 'gw-1', site: 'site-a', boot: 'b', seq: 1, sentAt: T, readings });
const event: AlarmEvent = {
  v: 1,
  eventId: 'evt_0123456789abcdef0123456789abcdef',
  gateway: 'gw-1',
  site: 'site-a',
  device: 'panel',
  profile: 'serial-conventional-panel-printer',
  condition: 'fire-zone-3',
  class: 'fire',
  state: 'active',
  time: T,
};

/*
 * The second line of defence behind the contract: these inputs cannot come
 * through the schema, so the functions are called with them directly.
 */
describe('line protocol', () => {
  it('writes one line per reading, with the device time', () => {
    const out: string[] = [];
    expect(readingLines(batch([reading]), out)).toEqual([]);
    expect(out).toEqual([`reading,site=site-a,device=temp-1,metric=temperature,profile=mqtt-temperature-humidity value=21.5,quality="good",unit="Cel" ${T}`]);
  });

  it.each([
    ['a newline in a tag', { metric: 'temperature\nreading' }],
    ['a carriage return in a tag', { device: 'temp-1\rx' }],
    ['a newline in a string field', { unit: 'Cel\nreading value=1' }],
    ['a backslash in a tag', { device: 'temp-1\\' }],
    ['an empty tag', { profile: '' }],
    ['a non-finite value', { value: Number.POSITIVE_INFINITY }],
    ['a time InfluxDB cannot store', { time: 9.3e15 }],
  ])('refuses a point with %s and writes the others of the batch', (_name, bad) => {
    const out: string[] = [];
    const refused = readingLines(batch([{ ...reading, device: 'before' }, { ...reading, ...bad }, { ...reading, device: 'after' }]), out);
    expect(refused).toHaveLength(1);
    expect(out).toHaveLength(2);
    expect(out.every((l) => !/[\r\n]/.test(l))).toBe(true);
    expect(out.map((l) => /device=([^,]+)/.exec(l)?.[1])).toEqual(['before', 'after']);
  });

  it('refuses an unsafe tag every time, and writes every series right however many there are (they are remembered, within a bound)', () => {
    const bad = { ...reading, device: 'temp\n1' };
    for (let i = 0; i < 2; i++) {
      const out: string[] = [];
      expect(readingLines(batch([bad, reading]), out)).toHaveLength(1);
      expect(out).toHaveLength(1);
    }
    // More series than are remembered (60,000 maps and strings): each line still names its own.
    const many = Array.from({ length: 120_000 }, (_, i) => ({ ...reading, device: `th-${i}`, unit: i % 2 ? 'Cel' : '%' }));
    const out: string[] = [];
    readingLines(batch(many), out);
    readingLines(batch(many.slice(0, 10)), out);
    expect(out).toHaveLength(120_010);
    expect(out[119_999]).toBe(`reading,site=site-a,device=th-119999,metric=temperature,profile=mqtt-temperature-humidity value=21.5,quality="good",unit="Cel" ${T}`);
    expect(out[120_000]).toBe(`reading,site=site-a,device=th-0,metric=temperature,profile=mqtt-temperature-humidity value=21.5,quality="good",unit="%" ${T}`);
  });

  it('escapes what it can: spaces, commas and equals signs in tags, quotes and backslashes in strings', () => {
    const out: string[] = [];
    readingLines(batch([{ ...reading, device: 'a b,c=d', unit: 'x"\\y' }]), out);
    expect(out[0]).toContain('device=a\\ b\\,c\\=d,');
    expect(out[0]).toContain('unit="x\\"\\\\y"');
  });

  it('writes an event, and refuses one it cannot write safely', () => {
    expect(eventLine({ ...event, text: 'FIRE "ZONE 3"' })).toBe(`event,site=site-a,device=panel,class=fire,condition=fire-zone-3 state="active",event_id="${event.eventId}",text="FIRE \\"ZONE 3\\"" ${T}`);
    expect(() => eventLine({ ...event, text: 'FIRE\nevent,site=x state="cleared"' })).toThrow(UnsafePoint);
    expect(() => eventLine({ ...event, condition: 'fire\nx' })).toThrow(UnsafePoint);
  });
});
