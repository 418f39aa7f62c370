import type { MessagePort } from 'node:worker_threads';
import { openQueueTables, revive, type QueueMethod } from './queue.js';

/**
 * The broker's telemetry queue tables on the worker thread (see queue.ts and
 * core/worker-host.ts): one call at a time, in the order they came, each
 * answered by its id.
 */
export function start(port: MessagePort, data: { path: string }): void {
  let opened: ReturnType<typeof openQueueTables> | undefined;
  port.on('message', (m: { id: number; method: QueueMethod | 'open' | 'close'; args: unknown[] }) => {
    try {
      if (m.method === 'open') {
        opened = openQueueTables(data.path);
        return port.postMessage({ id: m.id, result: true });
      }
      if (m.method === 'close') {
        opened?.close();
        opened = undefined;
        port.postMessage({ id: m.id, result: true });
        return port.close();
      }
      if (!opened) throw new Error('the telemetry queue is not open');
      const tables = opened.tables;
      const fn = tables[m.method] as (...a: unknown[]) => unknown;
      port.postMessage({ id: m.id, result: fn.apply(tables, m.args.map(revive)) });
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message, code: (err as { code?: string }).code });
    }
  });
}
