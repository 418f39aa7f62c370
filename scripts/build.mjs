#!/usr/bin/env node
// Compiles what `cosafe` runs into dist/, so that a running hub or gateway is
// plain JavaScript: no TypeScript loader at run time. tsx's loader runs its
// hooks on a thread of their own, one per thread that registers it, and keeps
// every transpiled module's source and map: measured on the bench's stack, the
// idle hub took 232 MiB with it and 157 MiB without, the gateway 183 and 134.
//
// esbuild transpiles file by file (no bundle: the layout, the module graph and
// the paths modules find their files by stay as in the sources); the set of
// files is what cli/main.ts and the worker modules reach, found by esbuild's
// resolver, so a new module is never forgotten. Files modules read at run time
// (pages, built-in profiles, the worker's entry) are copied beside them.
//
// dist/build.json lists every input with the time the build started;
// bin/cosafe.js runs dist/ only while no input is newer, and the sources
// through tsx otherwise, so an edit is never run stale.
//
//   node scripts/build.mjs           (npm ci runs it as `prepare`; npm test and npm run bench too)
import { build } from 'esbuild';
import { cpSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const ENTRIES = ['cli/main.ts', 'broker/persistence/queue-worker.ts', 'cloud-sync/telemetry/telemetry-worker.ts'];
/** Read by path at run time, not imported: copied whole. */
const ASSETS = ['web', 'device-profiles/builtin', 'core/worker-entry.mjs'];

const started = Date.now();
// The module graph: a bundle pass that writes nothing, for its list of inputs.
const graph = await build({
  absWorkingDir: ROOT,
  entryPoints: ENTRIES,
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  write: false,
  metafile: true,
  outdir: 'unused',
  logLevel: 'error',
});
const sources = Object.keys(graph.metafile.inputs).filter((f) => !f.startsWith('node_modules/'));
const compiled = sources.filter((f) => f.endsWith('.ts'));

// Into a fresh directory first, then swapped in: a process starting meanwhile sees the old build or the new one, never half of one.
const next = `${DIST}.next-${process.pid}`;
rmSync(next, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: compiled,
  outdir: next,
  outbase: '.',
  bundle: false,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'error',
});
for (const f of sources.filter((f) => !f.endsWith('.ts'))) {
  mkdirSync(dirname(join(next, f)), { recursive: true });
  cpSync(join(ROOT, f), join(next, f));
}
for (const a of ASSETS) cpSync(join(ROOT, a), join(next, a), { recursive: true });
writeFileSync(join(next, 'build.json'), `${JSON.stringify({ started, inputs: [...sources, ...ASSETS] }, null, 1)}\n`);
const old = `${DIST}.old-${process.pid}`;
try {
  renameSync(DIST, old);
} catch {
  // no build yet
}
renameSync(next, DIST);
rmSync(old, { recursive: true, force: true });
console.log(`cosafe: built ${compiled.length} modules into ${relative(process.cwd(), DIST) || '.'} in ${Date.now() - started} ms`);
