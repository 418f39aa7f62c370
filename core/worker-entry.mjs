// The entry of cosafe's worker thread (core/worker-host.ts). It loads each
// module it is asked to and hands it its own message port. A module of the
// sources (.ts, when bin/cosafe.js runs them) needs tsx's loader, which a worker
// does not inherit from a process that registered it in code; a module of the
// build (dist/, .js) runs as it is, without the loader's thread.
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

// Telemetry yields the CPU to the main thread, where alarms are handled (configureWorkerThread in
// worker-host.ts): `nice` levels below the process as it was started (a service already niced stays
// below it). On Linux priority 0 means this thread alone. Lowering one's own priority is always allowed;
// should it fail all the same, the thread runs as it is rather than not at all.
if (workerData?.nice) {
  try {
    setPriority(0, Math.min(19, getPriority(0) + workerData.nice));
  } catch {}
}

let loader;
// A worker always has its parent's port; `?.` only satisfies the type check.
parentPort?.on('message', async (m) => {
  if (m.type !== 'load') return;
  try {
    if (m.module.endsWith('.ts')) await (loader ??= import('tsx/esm/api').then(({ register }) => register()));
    const mod = await import(m.module);
    await mod.start(m.port, m.data);
  } catch (e) {
    const err = /** @type {{ message?: string, code?: string }} */ (e);
    m.port.postMessage({ type: 'load-failed', message: err?.message ?? String(e), code: err?.code });
  }
});
