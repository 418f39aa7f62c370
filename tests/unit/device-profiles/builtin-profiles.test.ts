import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CosafeError } from '../../../core/errors.js';
import { profileJsonSchema } from '../../../device-profiles/json-schema.js';
import { loadBuiltinProfiles, loadProfileDir } from '../../../device-profiles/loader.js';
import { checkSamples } from '../../../device-profiles/samples.js';
import { unitOf } from '../../../device-profiles/schema.js';

const profiles = [...loadBuiltinProfiles().values()];

describe('built-in profiles', () => {
  it('cover every transport with real kinds of safety devices', () => {
    expect(profiles.length).toBeGreaterThanOrEqual(8);
    expect(new Set(profiles.map((p) => p.transport))).toEqual(new Set(['mqtt', 'modbus-rtu', 'serial-lines', 'opcua']));
    expect(new Set(profiles.map((p) => p.id)).size).toBe(profiles.length);
  });

  it.each(profiles.map((p) => [p.id, p] as const))('%s: units from the vocabulary (or its own declared metrics), ranges on numbers, conditions on its own points', (_id, p) => {
    for (const point of p.points) {
      expect(point.unit).toBe(unitOf(p, point.metric));
      if (point.type === 'number') expect(point.range, `${p.id} ${point.metric} has no valid range`).toBeDefined();
    }
    for (const c of p.conditions) expect(p.points.some((pt) => pt.metric === c.metric), `${p.id} condition ${c.id}`).toBe(true);
    expect(new Set(p.conditions.map((c) => c.id)).size).toBe(p.conditions.length);
    // A printer port is silent between events; everything else must say how often it reports.
    if (p.transport !== 'serial-lines' || p.points.length > 0) expect(p.supervision, `${p.id} must say how often the device reports`).toBeDefined();
  });

  it.each(profiles.map((p) => [p.id, p] as const))('%s: every recorded sample decodes to what the profile promises', (_id, p) => {
    expect(p.samples.length).toBeGreaterThan(0);
    expect(checkSamples(p)).toEqual([]);
  });
});

describe('profile JSON Schema', () => {
  it('is generated from the schema and committed in sync (run `npm run profiles:schema`)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../../device-profiles/profile.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(profileJsonSchema());
  });
});

describe('profile loading', () => {
  it('reports every error of every file with file, line and path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-profiles-'));
    writeFileSync(
      join(dir, 'bad.yaml'),
      [
        'id: bad-one',
        'vendor: V',
        'model: M',
        'description: D',
        'version: 1',
        'transport: mqtt',
        'points:',
        '  - metric: temperature',
        '    unit: F',
        '    range: [0, 100]',
        '    read: { json: t }',
        'conditions:',
        '  - id: hot',
        '    class: fire',
        '    metric: smoke',
        '    when: { above: 50 }',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'worse.yaml'), 'id: x\ntransport: carrier-pigeon\n');
    try {
      loadProfileDir(dir);
      expect.unreachable('an invalid profile must not load');
    } catch (err) {
      expect(err).toBeInstanceOf(CosafeError);
      const details = (err as CosafeError).details;
      expect(details).toContain(`${join(dir, 'bad.yaml')}:9 points[0].unit: metric "temperature" is in "Cel", not "F"`);
      expect(details.some((d) => d.startsWith(`${join(dir, 'bad.yaml')}:15 conditions[0].metric: no data point has metric "smoke"`))).toBe(true);
      expect(details.some((d) => d.startsWith(`${join(dir, 'worse.yaml')}:2 transport:`))).toBe(true);
    }
  });
});
