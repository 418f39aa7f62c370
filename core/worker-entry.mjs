// The entry of cosafe's worker thread (core/worker-host.ts). Like bin/cosafe.js,
// it runs the TypeScript sources through tsx's loader, which a worker does not
// inherit from a process that registered it in code; then it loads each module
// it is asked to, and hands it its own message port.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
// A worker always has its parent's port; `?.` only satisfies the type check.
parentPort?.on('message', async (m) => {
  if (m.type !== 'load') return;
  try {
    const mod = await import(m.module);
    await mod.start(m.port, m.data);
  } catch (e) {
    const err = /** @type {{ message?: string, code?: string }} */ (e);
    m.port.postMessage({ type: 'load-failed', message: err?.message ?? String(e), code: err?.code });
  }
});
