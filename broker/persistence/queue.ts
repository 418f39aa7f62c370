import type { StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import { CosafeError, type ErrorCode } from '../../core/errors.js';
import { openDurableDatabase, WORKER_CHECKPOINT_PAGES } from '../../core/sqlite.js';
import { GroupCommit } from '../../core/group-commit.js';
import { attachWorkerTask, siblingModule, type WorkerTask } from '../../core/worker-host.js';
import { QueueTables, type JournalEntry } from './queue-tables.js';

/** The queue tables of one lane, wherever they live (this thread, or a worker thread). */
export interface Queue {
  enqueue(clientIds: readonly string[], packet: StoredPacket): Promise<void>;
  update(clientId: string, packet: StoredPacket): Promise<boolean>;
  clear(clientId: string, messageId: number | undefined): Promise<StoredPacket | undefined>;
  lastSeq(clientId: string): Promise<number>;
  page(clientId: string, after: number, upTo: number, limit: number): Promise<{ seq: number; packet: StoredPacket }[]>;
  count(clientId: string): Promise<number>;
  journalAppend(packet: StoredPacket): Promise<number>;
  journalRemove(id: number): Promise<void>;
  journalEntries(): Promise<JournalEntry[]>;
  close(): Promise<void>;
}

export type QueueMethod = Exclude<keyof Queue, 'close'>;

/** Each write of QueueTables is atomic by itself (one changing statement, or its own transaction). */
const ATOMIC = true;

/**
 * The tables on this thread (the alarm lane's, in broker.db). Writes go
 * through `group` (core/group-commit.ts): the writes of one turn of the event
 * loop share a transaction, and each resolves once it is committed.
 */
export function localQueue(tables: QueueTables, group: GroupCommit): Queue {
  return {
    enqueue: (ids, packet) => group.write(() => tables.enqueue(ids, packet), ATOMIC),
    update: (id, packet) => group.write(() => tables.update(id, packet), ATOMIC),
    clear: (id, messageId) => group.write(() => tables.clear(id, messageId), ATOMIC),
    lastSeq: async (id) => tables.lastSeq(id),
    page: async (id, after, upTo, limit) => tables.page(id, after, upTo, limit),
    count: async (id) => tables.count(id),
    journalAppend: (packet) => group.write(() => tables.journalAppend(packet), ATOMIC),
    journalRemove: (id) => group.write(() => tables.journalRemove(id), ATOMIC),
    journalEntries: async () => tables.journalEntries(),
    close: async () => group.commit(),
  };
}

/** The methods that write: on the worker they are answered once their group is committed. */
export const WRITES: ReadonlySet<QueueMethod> = new Set(['enqueue', 'update', 'clear', 'journalAppend', 'journalRemove']);

const MODULE = siblingModule(import.meta.url, 'queue-worker');

/**
 * The tables in a SQLite file of their own, on the worker thread
 * (queue-worker.ts, core/worker-host.ts): the telemetry lane's, so its writes,
 * WAL checkpoints and flushes never stall the broker's event loop, where alarms
 * are handled. Each call is a message to the worker, answered in order. If the
 * thread dies (a bug), the calls in flight fail (the broker refuses those
 * publishes: gateways keep them and send them again) and the next call opens
 * the file again on a new thread.
 */
export async function workerQueue(path: string): Promise<Queue> {
  let next = 0;
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let current: Promise<WorkerTask> | undefined;
  let closed = false;

  const failAll = (err: Error) => {
    for (const c of calls.values()) c.reject(err);
    calls.clear();
  };
  const send = (task: WorkerTask, method: QueueMethod | 'open' | 'close', args: unknown[]) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++next;
      calls.set(id, { resolve, reject });
      task.port.postMessage({ id, method, args: args.map(toWire) });
    });
  const connect = async (): Promise<WorkerTask> => {
    const task = attachWorkerTask(MODULE, { path });
    task.port.on('message', (m: { id: number; result?: unknown; error?: string; code?: string; type?: string; message?: string }) => {
      if (m.type === 'load-failed') return failAll(new Error(`the broker's telemetry queue could not start: ${m.message}`));
      const call = calls.get(m.id);
      if (!call) return;
      calls.delete(m.id);
      if (m.error !== undefined) call.reject(m.code?.startsWith('COSAFE_ERR_') ? new CosafeError(m.code as ErrorCode, m.error) : Object.assign(new Error(m.error), m.code ? { code: m.code } : {}));
      else call.resolve(revive(m.result));
    });
    task.onExit((err) => {
      current = undefined;
      failAll(err);
    });
    try {
      await send(task, 'open', []);
    } catch (err) {
      current = undefined;
      await task.detach();
      throw err;
    }
    return task;
  };
  const call = async <T>(method: QueueMethod, ...args: unknown[]): Promise<T> => {
    if (closed) throw new Error("the broker's telemetry queue is closed");
    const task = await (current ??= connect());
    return (await send(task, method, args)) as T;
  };
  current = connect();
  await current;
  return {
    enqueue: (ids, packet) => call('enqueue', ids, packet),
    update: (id, packet) => call('update', id, packet),
    clear: (id, messageId) => call('clear', id, messageId),
    lastSeq: (id) => call('lastSeq', id),
    page: (id, after, upTo, limit) => call('page', id, after, upTo, limit),
    count: (id) => call('count', id),
    journalAppend: (packet) => call('journalAppend', packet),
    journalRemove: (id) => call('journalRemove', id),
    journalEntries: () => call('journalEntries'),
    async close() {
      closed = true;
      const task = await current?.catch(() => undefined);
      if (!task) return;
      await send(task, 'close', []).catch(() => {});
      await task.detach();
    },
  };
}

/** The tables behind a worker: opened there, in a file of their own. */
export function openQueueTables(path: string): { tables: QueueTables; group: GroupCommit; close(): void } {
  const db = openDurableDatabase(path, { checkpointPages: WORKER_CHECKPOINT_PAGES });
  const group = new GroupCommit(db);
  return {
    tables: new QueueTables(db),
    group,
    close: () => {
      group.commit();
      db.close();
    },
  };
}

/** What of a packet crosses to the worker: its data, not the callbacks Aedes hangs on it (a write callback). */
function toWire(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v !== 'function'));
}

/**
 * Structured cloning between threads turns Buffers into Uint8Arrays; Aedes and
 * the serialisation of packets want Buffers back.
 */
export function revive<T>(value: T): T {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength) as T;
  if (Array.isArray(value)) return value.map(revive) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) (value as Record<string, unknown>)[k] = revive(v);
  }
  return value;
}
