// The telemetry worker thread's entry: like bin/cosafe.js, it runs the
// TypeScript sources through tsx's loader, which a worker does not inherit
// from a process that registered it in code.
import { register } from 'tsx/esm/api';

register();
await import('./telemetry-worker.ts');
