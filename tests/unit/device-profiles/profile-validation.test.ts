import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CosafeError } from '../../../core/errors.js';
import { decodeJsonPayload } from '../../../device-profiles/codecs/json-payload.js';
import { loadProfileDir } from '../../../device-profiles/loader.js';
import { checkSamples } from '../../../device-profiles/samples.js';
import { MAX_EXTRA_METRICS, Profile, namedGroups, type ProfileOf } from '../../../device-profiles/schema.js';

const base = { vendor: 'Test', model: 'T-1', description: 'A test device', version: 1 };

/** Writes one profile file and returns what the validator says about it. */
function problemsOf(profile: Record<string, unknown>): { file: string; details: readonly string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-profile-'));
  const file = join(dir, 'p.yaml');
  writeFileSync(file, stringify(profile));
  try {
    loadProfileDir(dir);
    return { file, details: [] };
  } catch (err) {
    if (err instanceof CosafeError) return { file, details: err.details };
    throw err;
  }
}

const zigbeeSensor = {
  ...base,
  id: 'zigbee-th',
  transport: 'mqtt',
  metrics: { linkquality: { unit: '1', description: 'Zigbee link quality indicator, 0-255' } },
  points: [
    { metric: 'temperature', unit: 'Cel', range: [-40, 125], read: { json: 'temperature' } },
    { metric: 'linkquality', unit: '1', range: [0, 255], read: { json: 'linkquality' } },
  ],
  conditions: [{ id: 'weak-link', class: 'trouble', metric: 'linkquality', when: { below: 10 } }],
};

describe('profiles: metrics beyond the vocabulary', () => {
  it('reads a metric the profile declares, with its unit, and may watch it', () => {
    const p = Profile.parse(zigbeeSensor) as ProfileOf<'mqtt'>;
    const out = decodeJsonPayload(p, '{"temperature": 4.5, "linkquality": 120}', 1);
    expect(out.values.map((v) => [v.metric, v.value, v.unit])).toEqual([
      ['temperature', 4.5, 'Cel'],
      ['linkquality', 120, '1'],
    ]);
  });

  it('refuses an undeclared metric, a wrong unit, a vocabulary metric in another unit, bad names and too many', () => {
    const names = problemsOf({ ...zigbeeSensor, metrics: { 'Link-Quality': { unit: '1' }, pressure: { unit: 'h Pa' } }, points: [{ ...zigbeeSensor.points[0], unit: '°C' }], conditions: [] });
    expect(names.details).toEqual([
      expect.stringMatching(new RegExp(`^${names.file}:\\d+ metrics\\.Link-Quality: must be snake_case`)),
      expect.stringMatching(new RegExp(`^${names.file}:\\d+ metrics\\.pressure\\.unit: must be a unit code`)),
      expect.stringMatching(new RegExp(`^${names.file}:\\d+ points\\[0\\]\\.unit: must be a unit code .*UCUM style: Cel`)),
    ]);
    const meaning = problemsOf({
      ...zigbeeSensor,
      metrics: { temperature: { unit: 'K' } },
      points: [{ ...zigbeeSensor.points[0], unit: 'K' }, zigbeeSensor.points[1]],
      conditions: [],
    });
    expect(meaning.details).toEqual([
      expect.stringMatching(/metrics\.temperature\.unit: "temperature" is a vocabulary metric in "Cel"; it cannot be declared in "K" \(choose another name\)$/),
      expect.stringMatching(/points\[0\]\.unit: metric "temperature" is in "Cel", not "K"$/),
      expect.stringMatching(/points\[1\]\.metric: "linkquality" is not in the vocabulary \(temperature, humidity, .*\); declare it under "metrics" with its unit$/),
    ]);
    const many = Object.fromEntries(Array.from({ length: MAX_EXTRA_METRICS + 1 }, (_, i) => [`extra_${i}`, { unit: '1' }]));
    expect(problemsOf({ ...zigbeeSensor, metrics: many, conditions: [], points: [zigbeeSensor.points[0]] }).details).toEqual([
      expect.stringContaining(`metrics: ${MAX_EXTRA_METRICS + 1} extra metrics; at most ${MAX_EXTRA_METRICS} per profile`),
    ]);
  });
});

const panel = {
  ...base,
  id: 'my-panel',
  transport: 'serial-lines',
  lines: [{ match: '^FIRE ZONE (?<zone>\\d+)', signal: { key: 'fire-{zone}', class: 'fire', state: 'active' } }],
};

describe('profiles: panel line rules', () => {
  it('finds the named groups of a pattern exactly', () => {
    expect(namedGroups('^(?<time>\\S+) (?:FIRE|ALARM) (?<zone>\\d+)(?<=\\d)')).toEqual(new Set(['time', 'zone']));
    expect(namedGroups('(unclosed')).toBeUndefined();
  });

  it('refuses a key, a time group or a Contact ID rule naming a group the pattern does not have, with the path', () => {
    const { file, details } = problemsOf({
      ...panel,
      lines: [
        { match: '^FIRE ZONE (?<zone>\\d+)', signal: { key: 'fire-{zome}', class: 'fire', state: 'active' } },
        { match: '^(?<at>\\S+) RESET', time: { group: 'time', format: 'HH:mm' }, resetAll: true },
        { match: '^CID (?<q>\\d)(?<code>\\d{3})', contactId: true },
      ],
      points: [{ metric: 'temperature', unit: 'Cel', range: [0, 100], read: { line: '^TEMP (?<val>\\d+)' } }],
    });
    const line = (n: number) => `${file}:${n}`;
    expect(details).toEqual([
      `${line(10)} lines[0].signal.key: the key uses {zome}, but the pattern has no group "zome" (its named groups: "zone"); add (?<zome>...) to it`,
      `${line(15)} lines[1].time.group: the time is read from a group "time", but the pattern has no group "time" (its named groups: "at"); add (?<time>...) to it`,
      `${line(18)} lines[2].match: Contact ID reads a group "qualifier", but the pattern has no group "qualifier" (its named groups: "q", "code"); add (?<qualifier>...) to it`,
      `${line(27)} points[0].read.line: the value is read from a group "value", but the pattern has no group "value" (its named groups: "val"); add (?<value>...) to it`,
    ]);
  });

  it('names the allowed values when a rule has a typo in an enum', () => {
    const { file, details } = problemsOf({ ...panel, lines: [{ match: '^FIRE', signal: { key: 'fire', class: 'fier', state: 'actve' } }] });
    expect(details).toContain(`${file}:11 lines[0].signal.class: Invalid option: expected one of "fire"|"gas"|"co"|"waterflow"|"intrusion"|"supervisory"|"trouble"`);
    expect(details).toContain(`${file}:12 lines[0].signal.state: Invalid option: expected one of "active"|"cleared"`);
    const framing = problemsOf({ ...panel, serial: { dataBits: 9, stopBits: 3 } }).details;
    expect(framing.some((d) => d.includes('serial.dataBits: Invalid option: expected one of 7|8'))).toBe(true);
    expect(framing.some((d) => d.includes('serial.stopBits: Invalid option: expected one of 1|2'))).toBe(true);
    const when = problemsOf({ ...zigbeeSensor, conditions: [{ id: 'hot', class: 'fire', metric: 'temperature', when: { above: 'hot' } }] }).details;
    expect(when.some((d) => d.includes('conditions[0].when.above: Invalid input: expected number, received string'))).toBe(true);
  });

  it('lets a sample say whether a line is recognized, ignored or unrecognized, and when the event happened', () => {
    const timed = Profile.parse({
      ...panel,
      lines: [{ match: '^(?<at>\\S+ \\S+) FIRE ZONE (?<zone>\\d+)', time: { group: 'at', format: 'yyyy-MM-dd HH:mm:ss' }, signal: { key: 'fire-{zone}', class: 'fire', state: 'active' } }],
      ignore: ['^-+$'],
      samples: [
        { input: '2025-11-02 03:04:05 FIRE ZONE 7', expect: { line: 'recognized', signals: [{ key: 'fire-7', class: 'fire', state: 'active', time: '2025-11-02T03:04:05Z' }] } },
        { input: '----------', expect: { line: 'ignored' } },
        { input: 'PAPER OUT', expect: { line: 'unrecognized' } },
        { description: 'wrong on purpose', input: 'PAPER OUT', expect: { line: 'ignored' } },
        { description: 'wrong time on purpose', input: '2025-11-02 03:04:05 FIRE ZONE 7', expect: { signals: [{ key: 'fire-7', class: 'fire', state: 'active', time: '2025-11-02T03:04:06Z' }] } },
      ],
    });
    expect(checkSamples(timed)).toEqual([
      'samples[3] (wrong on purpose): expected line "ignored", decoded "unrecognized"',
      expect.stringMatching(/^samples\[4\] \(wrong time on purpose\): expected signals .*03:04:06.*decoded .*03:04:05/),
    ]);
  });
});
