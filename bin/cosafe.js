#!/usr/bin/env node
// The published entry point. cosafe ships TypeScript sources and runs them through
// tsx's loader, so there is no build step to forget and no stale dist/ to debug.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 lets the heap grow up to four times what survived the last full collection
// when a process allocates fast, as the hub does with a thousand devices
// publishing: its live heap stayed near 130 MiB while its RSS reached 675 MiB,
// the rest garbage not yet collected. Twice the live heap instead cut that peak
// to 461 MiB at no measurable cost in throughput or CPU (`npm run bench -- --only
// devices`). Only when to collect changes, never how much may be live: unlike a
// heap limit, it cannot make a busy hub run out of memory. A flag given to node
// itself wins (it is not allowed in NODE_OPTIONS).
if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) setFlagsFromString('--heap-growing-percent=100');

register();
await import('../cli/main.ts');
