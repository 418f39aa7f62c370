import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

/** A module running on the worker thread, reached through its own port. */
export interface WorkerTask {
  readonly port: MessagePort;
  /** Called if the thread dies (a bug): the task is gone and must be attached again. */
  onExit(listener: (error: Error) => void): void;
  /** Closes the port; the thread ends when its last task is detached. */
  detach(): Promise<void>;
}

/**
 * The module `name` beside the module at `base` (its `import.meta.url`), in the
 * same form: a .ts source when the sources run through tsx, the .js of dist/
 * when the build runs (bin/cosafe.js, scripts/build.mjs).
 */
export function siblingModule(base: string, name: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

let worker: Worker | undefined;
const tasks = new Set<{ exit: (error: Error) => void }>();
let threadNice = 0;

/**
 * How many nice levels below the rest of the process the worker thread puts
 * itself when it starts (Linux, where a thread has its own; elsewhere it would
 * lower the whole process, so 0 there). The thread does only telemetry: where
 * the CPU is short (a small hub that runs InfluxDB beside it, a burst), the
 * main thread, where the broker and the alarm lane run, goes first, and
 * telemetry waits, as it may. Set before the first task is attached.
 */
export function configureWorkerThread(o: { nice: number }): void {
  threadNice = process.platform === 'linux' ? o.nice : 0;
}

/**
 * One worker thread per process for the work that must not share the event
 * loop with alarms: the broker's telemetry queue (broker/persistence) and
 * cloud-sync's telemetry lane (cloud-sync/telemetry). Each is a module with
 * `start(port, data)`, loaded on the thread and reached by a message port of
 * its own. One thread and not one each: every V8 isolate costs memory (about
 * 40 MB with the TypeScript loader of the sources), and telemetry waiting
 * behind telemetry is fine.
 */
export function attachWorkerTask(module: URL, data: unknown): WorkerTask {
  const w = (worker ??= spawn());
  const { port1, port2 } = new MessageChannel();
  const listeners: ((error: Error) => void)[] = [];
  const entry = { exit: (error: Error) => listeners.forEach((l) => l(error)) };
  tasks.add(entry);
  w.postMessage({ type: 'load', module: module.href, data, port: port2 }, [port2]);
  return {
    port: port1,
    onExit: (l) => void listeners.push(l),
    async detach() {
      tasks.delete(entry);
      port1.close();
      if (tasks.size === 0 && worker === w) {
        worker = undefined;
        await w.terminate();
      }
    },
  };
}

function spawn(): Worker {
  // V8 lets an idle heap grow far past what is live (measured: 40 MB live in a 160 MB heap after a burst);
  // limits make it collect instead. Past them the thread dies and its tasks start again (nothing is lost).
  const w = new Worker(ENTRY, { resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 128 }, workerData: { nice: threadNice } });
  const died = (error: Error) => {
    if (worker !== w) return;
    worker = undefined;
    const gone = [...tasks];
    tasks.clear();
    for (const t of gone) t.exit(error);
  };
  w.on('error', died);
  w.on('exit', (code) => died(new Error(`the worker thread exited (code ${code})`)));
  return w;
}
