import { describe, expect, it } from 'vitest';
import { METRIC_NAME_PATTERN, UNIT_PATTERN, metricUnits } from '../../../core/vocabulary.js';

describe('vocabulary patterns', () => {
  it('accept every built-in metric and unit, and UCUM-style units', () => {
    for (const [metric, unit] of Object.entries(metricUnits)) {
      expect(metric).toMatch(METRIC_NAME_PATTERN);
      expect(unit).toMatch(UNIT_PATTERN);
    }
    for (const unit of ['L/min', '[ppm]', 'dB(A)', 'm3/h', 'ug/m3', '']) expect(unit).toMatch(UNIT_PATTERN);
  });

  it('refuse what could break a line of line protocol, a label or a CSV cell', () => {
    for (const unit of ['a b', 'a"', 'a\\b', 'a,b', 'a=b', '°C', 'x\n', 'x'.repeat(17)]) expect(unit).not.toMatch(UNIT_PATTERN);
    for (const metric of ['Temperature', 'a\nb', 'a b', '1st', 'a-b', 'x'.repeat(65)]) expect(metric).not.toMatch(METRIC_NAME_PATTERN);
  });
});
