import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { attachWorkerTask, configureWorkerThread } from '../../../core/worker-host.js';
import { threadNice } from '../../helpers/threads.js';

describe.runIf(process.platform === 'linux')('the worker thread', () => {
  it('runs the configured nice levels below the process, and the threads that were there (alarms, the broker) stay as they were', async () => {
    const before = threadNice();
    const main = before.get(process.pid)!;
    configureWorkerThread({ nice: 7 });
    const task = attachWorkerTask(new URL('../../helpers/idle-worker-task.ts', import.meta.url), {});
    await once(task.port, 'message');
    const after = threadNice();
    const started = [...after].filter(([tid]) => !before.has(tid));
    // The worker's thread (and a thread it starts itself, such as the TypeScript loader's when the sources run).
    expect(started.filter(([, nice]) => nice === Math.min(19, main + 7)).length).toBeGreaterThanOrEqual(1);
    expect([...after].filter(([tid]) => before.has(tid))).toEqual([...before].filter(([tid]) => after.has(tid)));
    await task.detach();
  });
});
