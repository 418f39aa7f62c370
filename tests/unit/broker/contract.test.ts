import { describe, expect, it } from 'vitest';
import { AlarmEvent, GatewayStatus, ReadingBatch, decodeAlarmEvent, decodeMessage, parseTopic, subscriptions, topics } from '../../../broker/contract/index.js';

const batch = {
  v: 1,
  gateway: 'gw-1',
  site: 'site-a',
  boot: 'b1',
  seq: 7,
  sentAt: 1_764_190_000_000,
  readings: [{ device: 'temp-1', metric: 'temperature', value: 21.5, unit: 'Cel', time: 1_764_190_000_000, quality: 'good', profile: 'mqtt-temperature-humidity' }],
};

const event = {
  v: 1,
  eventId: 'evt_0123456789abcdef0123456789abcdef',
  gateway: 'gw-1',
  site: 'site-a',
  device: 'smoke-1',
  profile: 'mqtt-smoke-detector',
  condition: 'smoke',
  class: 'fire',
  state: 'active',
  metric: 'smoke',
  value: 1,
  unit: 'bool',
  time: 1_764_190_000_000,
};

describe('contract topics', () => {
  it('puts the site in every device-side topic and reads it back', () => {
    expect(topics.readings('site-a', 'gw-1')).toBe('cosafe/v1/sites/site-a/gateways/gw-1/readings');
    expect(parseTopic(topics.readings('site-a', 'gw-1'))).toEqual({ kind: 'readings', site: 'site-a', gateway: 'gw-1' });
    expect(parseTopic(topics.events('s', 'g'))).toEqual({ kind: 'events', site: 's', gateway: 'g' });
    expect(parseTopic(topics.deviceUplink('s', 'd'))).toEqual({ kind: 'deviceUplink', site: 's', device: 'd' });
  });

  it('puts the district in every dispatch topic, and keeps residents under public/', () => {
    expect(topics.gatewayCommand('s', 'g', 'reboot')).toBe('cosafe/v1/sites/s/gateways/g/commands/reboot');
    expect(topics.dispatchAlarm('north', 's')).toBe('cosafe/v1/dispatch/north/alarms/s');
    expect(topics.dispatchAck('north', 'evt_1')).toBe('cosafe/v1/dispatch/north/acks/evt_1');
    expect(topics.agencyFeed('north', 'events')).toBe('cosafe/v1/agency/north/events');
    expect(topics.publicAlerts('871fb4662ffffff')).toBe('cosafe/v1/public/871fb4662ffffff/alerts');
    expect(subscriptions.district('north')).toBe('cosafe/v1/dispatch/north/#');
    // None of the new topics is read back as a gateway or device topic.
    expect(parseTopic(topics.gatewayCommand('s', 'g', 'x'))).toBeUndefined();
  });

  it('rejects topics outside the tree', () => {
    expect(parseTopic('cosafe/v2/sites/s/gateways/g/readings')).toBeUndefined();
    expect(parseTopic('cosafe/v1/sites/s/gateways/g/other')).toBeUndefined();
    expect(parseTopic('cosafe/v1/sites/s/gateways/g/readings/extra')).toBeUndefined();
    expect(parseTopic('')).toBeUndefined();
  });

  it('subscriptions match the topics they are for', () => {
    const matches = (filter: string, topic: string) => new RegExp(`^${filter.replace(/\+/g, '[^/]+')}$`).test(topic);
    expect(matches(subscriptions.allReadings, topics.readings('a', 'b'))).toBe(true);
    expect(matches(subscriptions.allReadings, topics.events('a', 'b'))).toBe(false);
    expect(matches(subscriptions.allEvents, topics.events('a', 'b'))).toBe(true);
  });
});

describe('contract messages', () => {
  it('accepts a valid reading batch and alarm event', () => {
    expect(decodeMessage(ReadingBatch, JSON.stringify(batch))).toEqual({ ok: true, value: batch });
    expect(decodeMessage(AlarmEvent, Buffer.from(JSON.stringify(event)))).toEqual({ ok: true, value: event });
  });

  it('accepts the largest sequence number and free text with accents, quotes and emoji', () => {
    expect(decodeMessage(ReadingBatch, JSON.stringify({ ...batch, seq: Number.MAX_SAFE_INTEGER })).ok).toBe(true);
    expect(decodeMessage(AlarmEvent, JSON.stringify({ ...event, text: 'FEU "zone 3" — cuisine 🔥', location: 'Küche, 2. OG' })).ok).toBe(true);
  });

  it('says what is wrong with an invalid message, and never throws', () => {
    const r = decodeMessage(ReadingBatch, JSON.stringify({ ...batch, seq: -1, readings: [] }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain('seq');
      expect(r.error).toContain('readings');
    }
    const notJson = decodeMessage(ReadingBatch, '{"v":1,');
    expect(notJson.ok).toBe(false);
    if (!notJson.ok) expect(notJson.error).toMatch(/^not JSON/);
  });

  it.each([
    ['a topic-breaking site id', { ...batch, site: 'a/b' }],
    ['a wildcard gateway id', { ...batch, gateway: '+' }],
    ['a non-finite value', { ...batch, readings: [{ ...batch.readings[0], value: null }] }],
    ['an unknown quality', { ...batch, readings: [{ ...batch.readings[0], quality: 'fine' }] }],
    ['another version', { ...batch, v: 2 }],
    // Issue 9: each of these became a tag or field of InfluxDB line protocol, and a newline split it into two points.
    ['a newline in the metric', { ...batch, readings: [{ ...batch.readings[0], metric: 'temperature\nreading' }] }],
    ['a metric outside the vocabulary pattern', { ...batch, readings: [{ ...batch.readings[0], metric: 'Temperature,site=x' }] }],
    ['a newline in the profile', { ...batch, readings: [{ ...batch.readings[0], profile: 'p\nreading' }] }],
    ['a newline in the unit', { ...batch, readings: [{ ...batch.readings[0], unit: 'Cel\nx' }] }],
    ['a quote in the unit', { ...batch, readings: [{ ...batch.readings[0], unit: 'C"el' }] }],
    ['a boot that is not an id', { ...batch, boot: 'b/1' }],
    ['a sequence number past 2^53 - 1', { ...batch, seq: 2 ** 53 }],
    ['a reading time of 9e15', { ...batch, readings: [{ ...batch.readings[0], time: 9e15 }] }],
    ['a time after 2100', { ...batch, sentAt: Date.UTC(2100, 0, 2) }],
  ])('rejects a batch with %s', (_name, bad) => {
    expect(decodeMessage(ReadingBatch, JSON.stringify(bad)).ok).toBe(false);
  });

  it.each([
    ['an unknown class', { ...event, class: 'earthquake' }],
    ['an unknown state', { ...event, state: 'maybe' }],
    ['a malformed event id', { ...event, eventId: '123' }],
    ['no device', { ...event, device: undefined }],
    ['a newline in the condition', { ...event, condition: 'smoke\nevent' }],
    ['a condition that is not an id', { ...event, condition: 'fire zone 3' }],
    ['a newline in the text', { ...event, text: 'FIRE\nevent,site=x state="cleared"' }],
    ['a terminal escape in the text', { ...event, text: 'FIRE \u001b[2J' }],
    ['a bidi override in the location', { ...event, location: 'kitchen \u202e2F' }],
    ['text over 200 characters', { ...event, text: 'x'.repeat(201) }],
    ['a profile that is not an id', { ...event, profile: 'p,q' }],
  ])('rejects an event with %s', (_name, bad) => {
    expect(decodeMessage(AlarmEvent, JSON.stringify(bad)).ok).toBe(false);
  });
});

describe('gateway status', () => {
  const status = (health: Record<string, unknown>) => JSON.stringify({ v: 1, gateway: 'gw-1', site: 'site-a', state: 'online', boot: 'b1', since: 1, health: { at: 2, adapters: [], activeConditions: [], ...health } });
  const device = { id: 'temp-1', profile: 'mqtt-temperature-humidity', transport: 'mqtt', lastSeen: null, commLost: false };

  it('takes a full report (the devices) and a periodic one (the list by name, when each was last heard)', () => {
    expect(decodeMessage(GatewayStatus, Buffer.from(status({ devices: [device], deviceList: '0123456789abcdef' }))).ok).toBe(true);
    expect(decodeMessage(GatewayStatus, Buffer.from(status({ deviceList: '0123456789abcdef', lastSeenAgo: [12, null] }))).ok).toBe(true);
  });

  it('refuses a report with neither, or with ages that are not ages', () => {
    for (const health of [{}, { deviceList: '0123456789abcdef' }, { lastSeenAgo: [1] }, { deviceList: 'x', lastSeenAgo: [1] }, { deviceList: '0123456789abcdef', lastSeenAgo: [-1] }, { deviceList: '0123456789abcdef', lastSeenAgo: ['1'] }]) {
      const r = decodeMessage(GatewayStatus, Buffer.from(status(health)));
      expect(r.ok, JSON.stringify(health)).toBe(false);
    }
  });
});

describe('alarm events as cloud-sync takes them', () => {
  const event = { v: 1, eventId: `evt_${'a'.repeat(32)}`, gateway: 'gw-1', site: 'site-a', device: 'panel', profile: 'serial-panel', condition: 'fire-zone-3', class: 'fire', state: 'active', time: 1_764_190_000_000 };

  it('takes a valid event as it is', () => {
    const r = decodeAlarmEvent(JSON.stringify({ ...event, text: 'FIRE ZONE 3' }));
    expect(r).toEqual({ ok: true, value: { ...event, text: 'FIRE ZONE 3' } });
  });

  it('cleans or drops descriptive fields that break the contract, and says which', () => {
    const r = decodeAlarmEvent(JSON.stringify({ ...event, text: 'a\nb', location: 'x'.repeat(300), condition: 'zone 3', unit: 'a,b', metric: 'Bad Metric', value: 'high' }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ text: 'a b', location: 'x'.repeat(200), condition: 'zone_3' });
    expect(r.value).not.toHaveProperty('unit');
    expect(r.value).not.toHaveProperty('metric');
    expect(r.value).not.toHaveProperty('value');
    expect(r.repaired?.sort()).toEqual(['condition', 'location', 'metric', 'text', 'unit', 'value']);
  });

  it('refuses an event wrong in what identifies or routes it', () => {
    for (const bad of [{ eventId: 'evt_1' }, { site: 'a/b' }, { device: 'x y' }, { class: 'party' }, { state: 'maybe' }, { time: 9e15 }]) {
      expect(decodeAlarmEvent(JSON.stringify({ ...event, text: 'a\nb', ...bad })).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});
