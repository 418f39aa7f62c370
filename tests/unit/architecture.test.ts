import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The folder rules of ARCHITECTURE.md, checked on every relative import:
 * the flow goes one way, and the contract is the only thing edge and cloud-sync share.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const allowed: Record<string, string[]> = {
  core: ['core'],
  'device-profiles': ['device-profiles', 'core'],
  'broker/contract': ['broker/contract', 'core'],
  // The ACL grants its rights in terms of the contract's topic builders (the one place topics are spelled).
  broker: ['broker', 'broker/contract', 'core'],
  edge: ['edge', 'device-profiles', 'broker/contract', 'core'],
  'cloud-sync': ['cloud-sync', 'broker/contract', 'core'],
  dashboards: ['dashboards', 'broker/contract'],
  // The pages: browser modules; the contract for its types only (JSDoc), vendor modules by their /vendor/ URL.
  web: ['web', 'broker/contract'],
};

/** Packages the hub serves to the pages under /vendor/: a page may name them in JSDoc types. */
const VENDORED = ['h3-js'];

function partOf(file: string): string | undefined {
  const rel = relative(root, file);
  if (rel.startsWith('broker/contract/')) return 'broker/contract';
  return Object.keys(allowed).find((p) => rel.startsWith(`${p}/`));
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') || (p.endsWith('.js') && relative(root, p).startsWith('web/')) ? [p] : [];
  });
}

describe('folder import rules', () => {
  const files = Object.keys(allowed)
    .filter((p) => !p.includes('/'))
    .flatMap((p) => {
      try {
        return sources(join(root, p));
      } catch {
        return [];
      }
    });

  it('finds the sources it checks', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(files.some((f) => relative(root, f).startsWith('web/') && f.endsWith('.js'))).toBe(true);
  });

  it('no part imports what ARCHITECTURE.md forbids', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = partOf(file)!;
      const text = readFileSync(file, 'utf8');
      // Static imports and re-exports, dynamic import() and JSDoc's import('...') types alike.
      for (const m of text.matchAll(/(?:(?:import|export)[^'"]*?from\s+|import\(\s*)['"](\.[^'"]+)['"]/g)) {
        const target = partOf(resolve(dirname(file), m[1]!));
        if (target === undefined || !allowed[from]!.includes(target)) violations.push(`${relative(root, file)} imports ${m[1]} (${target ?? 'outside the parts'})`);
      }
      // A page may load a module by URL only from the hub's /vendor/ (served from node_modules): never from elsewhere.
      if (from === 'web') {
        for (const m of text.matchAll(/(?:from\s+|import\(\s*)['"]([^.'"][^'"]*)['"]/g)) if (!m[1]!.startsWith('/vendor/') && !(m[0]!.startsWith('import(') && VENDORED.includes(m[1]!))) violations.push(`${relative(root, file)} imports ${m[1]} (pages import only web/, the contract's types and /vendor/)`);
      }
    }
    expect(violations).toEqual([]);
  });
});
