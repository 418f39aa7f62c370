import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A serial cable made of two pseudo-terminals joined by `socat` (Debian package
 * `socat`): the gateway opens `devicePath` as if it were /dev/ttyUSB0, the
 * simulator writes on `simPath`. `unplug()` ends socat (both ends vanish, as with
 * a pulled USB adapter) and `plug()` brings them back under the same paths.
 */
export class PtyPair {
  readonly devicePath: string;
  readonly simPath: string;
  private proc: ChildProcess | undefined;

  constructor(name = 'tty', dir = mkdtempSync(join(tmpdir(), 'cosafe-pty-'))) {
    this.devicePath = join(dir, `${name}-gateway`);
    this.simPath = join(dir, `${name}-device`);
  }

  async plug(): Promise<this> {
    const socat = socatPath();
    const args = [`pty,raw,echo=0,link=${this.devicePath}`, `pty,raw,echo=0,link=${this.simPath}`];
    // socat outlives a parent killed with SIGKILL (no handler runs): util-linux's setpriv asks the kernel to
    // kill it when its parent dies (prctl PR_SET_PDEATHSIG), so `cosafe demo` leaves no socat behind.
    const guard = setprivPath();
    this.proc = guard ? spawn(guard, ['--pdeathsig', 'KILL', '--', socat, ...args], { stdio: 'ignore' }) : spawn(socat, args, { stdio: 'ignore' });
    const deadline = Date.now() + 5000;
    while (!(existsSync(this.devicePath) && existsSync(this.simPath))) {
      if (this.proc.exitCode !== null) throw new Error(`socat exited with ${this.proc.exitCode}`);
      if (Date.now() > deadline) throw new Error('socat did not create the pseudo-terminals within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this;
  }

  async unplug(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }
}

let setprivBinary: string | null | undefined;
/** setpriv (Debian's util-linux, always installed there); null where there is none (not Linux). */
function setprivPath(): string | null {
  if (setprivBinary === undefined) setprivBinary = (process.env.PATH ?? '/usr/bin:/bin').split(':').map((dir) => join(dir, 'setpriv')).find((p) => existsSync(p)) ?? null;
  return setprivBinary;
}

let socatBinary: string | undefined;
function socatPath(): string {
  if (socatBinary) return socatBinary;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (existsSync(join(dir, 'socat'))) return (socatBinary = join(dir, 'socat'));
  }
  throw new Error('"socat" is not installed; serial tests and the demo need it. Install the Debian package: apt-get install -y socat');
}
