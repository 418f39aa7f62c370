import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricUnits } from '../../../core/vocabulary.js';
import { MAX_EXTRA_METRICS, ModbusProfile, SerialProfile } from '../../../device-profiles/schema.js';

const doc = readFileSync(new URL('../../../docs/profiles.md', import.meta.url), 'utf8');

describe('docs/profiles.md, what a profile author reads', () => {
  it('lists every metric of the vocabulary with its unit', () => {
    for (const [metric, unit] of Object.entries(metricUnits)) expect(doc, metric).toMatch(new RegExp(`^\\| \`${metric}\` \\| \`${unit.replace(/[/%]/g, (c) => `\\${c}`)}\` \\|`, 'm'));
  });

  it("gives the serial framing's defaults as the schema has them, and how to set 8N1 for Modbus", () => {
    const modbus = ModbusProfile.shape.serial.parse({});
    const lines = SerialProfile.shape.serial.parse({});
    expect(doc).toContain(`\`${modbus.parity}\` for \`modbus-rtu\``);
    expect(doc).toContain(`\`${lines.parity}\` for \`serial-lines\``);
    expect(doc).toMatch(/parity: none\s+# 8N1/);
  });

  it('explains extra metrics with their bound', () => {
    expect(doc).toContain('### Metrics beyond the vocabulary');
    expect(doc).toContain(`At most ${MAX_EXTRA_METRICS} per profile`);
  });
});
