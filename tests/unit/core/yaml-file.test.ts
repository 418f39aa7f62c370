import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Config } from '../../../core/config.js';
import { CosafeError } from '../../../core/errors.js';
import { parseYamlText } from '../../../core/yaml-file.js';

function detailsOf(text: string, schema: z.ZodType = Config): readonly string[] {
  try {
    parseYamlText(text, 'site.yaml', schema, 'COSAFE_ERR_CONFIG_INVALID');
  } catch (err) {
    if (err instanceof CosafeError) return err.details;
    throw err;
  }
  throw new Error('expected an error');
}

describe('YAML files: where the problem is', () => {
  it('reports an indentation error at its own line, not at line 1', () => {
    const text = ['gateway:', '  id: gw-1', '  site: bakery-12', ' devices:', '    - id: smoke-1', ''].join('\n');
    expect(detailsOf(text)).toEqual([expect.stringMatching(/^site\.yaml:4 /)]);
  });

  it('reports a value that matches no form of a union by the form it comes closest to', () => {
    const Rule = z.union([
      z.object({ match: z.string(), signal: z.object({ class: z.enum(['fire', 'trouble']) }).strict() }).strict(),
      z.object({ match: z.string(), resetAll: z.literal(true) }).strict(),
    ]);
    const schema = z.object({ lines: z.array(Rule) }).strict();
    const text = ['lines:', '  - match: RESET', '    resetAll: true', '  - match: FIRE', '    signal:', '      class: fier', ''].join('\n');
    expect(detailsOf(text, schema)).toEqual(['site.yaml:6 lines[1].signal.class: Invalid option: expected one of "fire"|"trouble"']);
    const either = z.object({ equals: z.union([z.boolean(), z.number()]) }).strict();
    expect(detailsOf('equals: "yes"\n', either)).toEqual(['site.yaml:1 equals: Invalid input: expected boolean or number']);
  });
});
