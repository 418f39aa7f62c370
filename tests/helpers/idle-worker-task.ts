import type { MessagePort } from 'node:worker_threads';

/** A task for the worker thread (core/worker-host.ts) that only says it runs: for tests of the host itself. */
export function start(port: MessagePort): void {
  port.postMessage({ type: 'ready' });
}
