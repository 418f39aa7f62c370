import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, requireBinary, waitUntil } from '../helpers/processes.js';

/** The children of a process, with their command names (Linux /proc). */
function children(pid: number): { pid: number; comm: string }[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  const pids = tasks.flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  return pids.map((p) => ({ pid: p, comm: readFileSync(`/proc/${p}/comm`, 'utf8').trim() }));
}

/** Gone, or a zombie nobody reaps yet (a container's init may not): either way it no longer runs. */
function running(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('cosafe demo, killed with SIGKILL', () => {
  it('leaves none of its socat serial lines running', async () => {
    requireBinary('socat', 'socat');
    const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-demo-kill-'));
    const demo = startCosafe(['demo', '--port', String(await freePort()), '--http-port', String(await freePort()), '--data-dir', dataDir, '--alarm-every', '0']);
    try {
      await waitUntil('the demo to run', () => demo.output().includes('demo running'), 60_000, 100);
      const socats = children(demo.child.pid!).filter((c) => c.comm === 'socat');
      expect(socats.length).toBe(2); // the panel's line and the RS-485 bus
      demo.child.kill('SIGKILL');
      await demo.exited;
      await waitUntil('every socat child to end with its parent', () => socats.every((s) => !running(s.pid)), 10_000, 50);
    } finally {
      await demo.stop('SIGKILL');
    }
  });
});
