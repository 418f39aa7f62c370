#!/usr/bin/env node
// The published entry point. It runs the JavaScript that scripts/build.mjs
// compiled into dist/ (npm ci builds it), and the TypeScript sources through
// tsx's loader when there is no build or any of its inputs changed since: an
// edit is never run stale, and a build only makes it start faster and use less
// memory (tsx's loader thread and transpiled sources cost the idle hub 75 MiB).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// V8 lets the heap grow up to four times what survived the last full collection
// when a process allocates fast, as the hub does with a thousand devices
// publishing: its live heap stayed near 130 MiB while its RSS reached 675 MiB,
// the rest garbage not yet collected. Twice the live heap instead cut that peak
// to 461 MiB at no measurable cost in throughput or CPU (`npm run bench -- --only
// devices`). Once the hub's per-reading work had shrunk, one and a half times
// (50) took the hub's peak through a 1,000,000-reading burst from 348-362 to
// 296-320 MiB and in the devices' flood from 309-313 to 264-273, for ingest of
// 0.44-0.46 of InfluxDB alone against 0.45-0.46 (full `npm run bench`, two runs
// each, alternated). Only when to collect changes, never how much may be live:
// unlike a heap limit, it cannot make a busy hub run out of memory. A flag given
// to node itself wins (it is not allowed in NODE_OPTIONS).
if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) setFlagsFromString('--heap-growing-percent=50');

const root = new URL('../', import.meta.url);

/** True when dist/ holds a build whose inputs (files, and every file under a directory) are all older than it. */
function builtAndCurrent() {
  let build;
  try {
    build = JSON.parse(readFileSync(new URL('dist/build.json', root), 'utf8'));
  } catch {
    return false;
  }
  const newer = (path) => {
    const s = statSync(path, { throwIfNoEntry: false });
    if (!s) return true;
    if (!s.isDirectory()) return s.mtimeMs >= build.started;
    return readdirSync(path).some((name) => newer(`${path}/${name}`));
  };
  return !build.inputs.some((input) => newer(fileURLToPath(new URL(input, root))));
}

if (process.env.COSAFE_FROM_SOURCES !== '1' && builtAndCurrent()) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
