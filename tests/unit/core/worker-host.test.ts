import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { attachWorkerTask, configureWorkerThread } from '../../../core/worker-host.js';
import { threadNice } from '../../helpers/threads.js';

describe.runIf(process.platform === 'linux')('the worker thread', () => {
  it('runs at the configured nice value, and the main thread (alarms, the broker) stays as it was', async () => {
    const before = threadNice();
    configureWorkerThread({ nice: 7 });
    const task = attachWorkerTask(new URL('../../helpers/idle-worker-task.ts', import.meta.url), {});
    await once(task.port, 'message');
    const after = threadNice();
    const started = [...after].filter(([tid]) => !before.has(tid));
    // The worker's thread (and a thread it starts itself, such as the TypeScript loader's when the sources run).
    expect(started.filter(([, nice]) => nice === 7).length).toBeGreaterThanOrEqual(1);
    expect(after.get(process.pid)).toBe(before.get(process.pid));
    expect([...after].filter(([tid, nice]) => nice === 7 && before.has(tid))).toEqual([]);
    await task.detach();
  });
});
