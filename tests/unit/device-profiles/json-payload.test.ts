import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeJsonPayload, readPath } from '../../../device-profiles/codecs/json-payload.js';
import { loadBuiltinProfiles, requireProfile } from '../../../device-profiles/loader.js';

const profiles = loadBuiltinProfiles();
const th = requireProfile(profiles, 'mqtt-temperature-humidity', 'mqtt');
const smoke = requireProfile(profiles, 'mqtt-smoke-detector', 'mqtt');

describe('JSON payload decoding', () => {
  it('turns a device payload into readings with the device time', () => {
    const out = decodeJsonPayload(th, '{"temp": 21.4, "hum": 41, "bat": 96, "ts": 1764190000000}', 5);
    expect(out.errors).toEqual([]);
    expect(out.values).toEqual([
      { metric: 'temperature', unit: 'Cel', value: 21.4, time: 1764190000000, quality: 'good' },
      { metric: 'humidity', unit: '%RH', value: 41, time: 1764190000000, quality: 'good' },
      { metric: 'battery', unit: '%', value: 96, time: 1764190000000, quality: 'good' },
    ]);
  });

  it('uses the receive time when the device sends none', () => {
    expect(decodeJsonPayload(smoke, '{"smoke": true}', 42).values).toEqual([{ metric: 'smoke', unit: 'bool', value: 1, time: 42, quality: 'good' }]);
  });

  it('keeps a reading outside its valid range, marked bad', () => {
    const out = decodeJsonPayload(th, '{"temp": 900}', 1);
    expect(out.values).toEqual([{ metric: 'temperature', unit: 'Cel', value: 900, time: 1, quality: 'bad', note: 'outside -40..125' }]);
  });

  it('names the field and the reason for a wrong type, and keeps the other fields', () => {
    const out = decodeJsonPayload(th, '{"temp": "hot", "hum": 50}', 1);
    expect(out.errors).toEqual(['temp: expected a number, got "hot"']);
    expect(out.signals).toEqual([]);
    expect(out.values.map((v) => v.metric)).toEqual(['humidity']);
  });

  it.each(['', 'not json', '{"temp":', '[1,2]', 'null', '42', '"x"'])('reports %j as an error instead of throwing', (payload) => {
    const out = decodeJsonPayload(th, payload, 1);
    expect(out.values).toEqual([]);
    expect(out.errors.length).toBeGreaterThan(0);
  });

  it('never throws on random or truncated payloads (fuzz)', () => {
    const good = JSON.stringify({ temp: 21.5, hum: 40, bat: 90, ts: 1764190000000, nested: { a: [1, 2, 3] } });
    for (let i = 0; i < 5000; i++) {
      const payload = i % 2 ? randomBytes(i % 200) : Buffer.from(good.slice(0, i % good.length));
      const out = decodeJsonPayload(i % 3 ? th : smoke, payload, 1);
      for (const v of out.values) expect(Number.isFinite(v.value)).toBe(true);
    }
  });

  it('refuses oversized payloads', () => {
    expect(decodeJsonPayload(th, Buffer.alloc(70_000, 32), 1).errors[0]).toMatch(/over the 65536-byte limit/);
  });

  it('reads nested paths and array indexes, and not inherited properties', () => {
    const doc = { a: { b: [{ c: 3 }] } };
    expect(readPath(doc, 'a.b[0].c')).toBe(3);
    expect(readPath(doc, 'a.x.c')).toBeUndefined();
    expect(readPath(doc, 'a.b[5].c')).toBeUndefined();
    expect(readPath({}, 'constructor')).toBeUndefined();
  });
});
