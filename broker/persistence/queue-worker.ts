import type { MessagePort } from 'node:worker_threads';
import { openQueueTables, revive, WRITES, type QueueMethod } from './queue.js';

/**
 * The broker's telemetry queue tables on the worker thread (see queue.ts and
 * core/worker-host.ts): one call at a time, in the order they came, each
 * answered by its id; a write once the transaction it shares with the other
 * writes of this turn is committed (core/group-commit.ts).
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
      const args = m.args.map(revive);
      if (!WRITES.has(m.method)) return port.postMessage({ id: m.id, result: fn.apply(tables, args) });
      // Atomic by itself (one changing statement, or a transaction of its own): no savepoint needed.
      opened.group.write(() => fn.apply(tables, args), true).then(
        (result) => port.postMessage({ id: m.id, result }),
        (err: Error) => port.postMessage({ id: m.id, error: err.message, code: (err as { code?: string }).code }),
      );
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message, code: (err as { code?: string }).code });
    }
  });
}
