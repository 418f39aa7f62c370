import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CosafeError } from '../../../core/errors.js';
import { metricUnits } from '../../../core/vocabulary.js';
import { loadBuiltinProfiles, loadProfileDir } from '../../../device-profiles/loader.js';

describe('built-in profiles', () => {
  const profiles = [...loadBuiltinProfiles().values()];

  it('includes the devices the demo and the docs rely on', () => {
    expect(profiles.map((p) => p.id).sort()).toEqual(expect.arrayContaining(['mqtt-smoke-detector', 'mqtt-temperature-humidity']));
  });

  it.each(profiles.map((p) => [p.id, p] as const))('%s: units from the vocabulary, ranges on numbers, conditions on existing points', (_id, p) => {
    for (const point of p.points) {
      expect(point.unit).toBe(metricUnits[point.metric]);
      if (point.type === 'number') expect(point.range, `${p.id} ${point.metric} has no valid range`).toBeDefined();
    }
    for (const c of p.conditions) expect(p.points.some((pt) => pt.metric === c.metric)).toBe(true);
    expect(new Set(p.conditions.map((c) => c.id)).size).toBe(p.conditions.length);
  });
});

describe('profile loading', () => {
  it('reports every error of every file with file, line and path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-profiles-'));
    writeFileSync(
      join(dir, 'bad.yaml'),
      ['id: bad-one', 'vendor: V', 'model: M', 'description: D', 'version: 1', 'transport: mqtt', 'points:', '  - metric: temperature', '    unit: F', '    type: number', '    json: t', 'conditions:', '  - id: hot', '    class: fire', '    metric: smoke', '    when: { above: 50 }', ''].join('\n'),
    );
    try {
      loadProfileDir(dir);
      expect.unreachable('an invalid profile must not load');
    } catch (err) {
      expect(err).toBeInstanceOf(CosafeError);
      const details = (err as CosafeError).details;
      expect(details).toContain(`${join(dir, 'bad.yaml')}:9 points[0].unit: metric "temperature" is in "Cel", not "F"`);
      expect(details.some((d) => d.includes(':15 conditions[0].metric: no data point has metric "smoke"'))).toBe(true);
    }
  });
});
