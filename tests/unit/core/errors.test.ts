import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CosafeError, errorCatalog } from '../../../core/errors.js';

describe('error catalog', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/`(COSAFE_ERR_[A-Z_]+)`/g)].map((m) => m[1]);

  it('documents every code, and documents no code that does not exist', () => {
    expect(new Set(documented)).toEqual(new Set(Object.keys(errorCatalog)));
  });

  it('describes an error with its code and every detail', () => {
    const err = new CosafeError('COSAFE_ERR_CONFIG_INVALID', 'x.yaml has 2 errors', { details: ['x.yaml:1 a: bad', 'x.yaml:2 b: bad'] });
    expect(err.describe()).toBe('COSAFE_ERR_CONFIG_INVALID: x.yaml has 2 errors\n  x.yaml:1 a: bad\n  x.yaml:2 b: bad');
  });
});
