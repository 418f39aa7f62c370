import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './wait.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'device-worker.ts');

/** The handle on the device process (device-worker.ts). */
export class DeviceFleet {
  private readonly child: ChildProcess;
  private output = '';
  private readonly seen = new Map<string, Record<string, unknown>>();
  private readonly waiters: { type: string; resolve: (m: Record<string, unknown>) => void }[] = [];

  constructor(o: { brokerUrl: string; site: string; devices: number; connections: number; everyMs: number; login: { username: string; password: string } }) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.on('message', (m: Record<string, unknown>) => {
      const type = String(m.type);
      this.seen.set(type, m);
      for (const w of this.waiters.filter((x) => x.type === type)) w.resolve(m);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  waitFor(type: string, ms: number): Promise<Record<string, unknown>> {
    const already = this.seen.get(type);
    if (already) return Promise.resolve(already);
    return withTimeout(new Promise((resolve) => this.waiters.push({ type, resolve })), ms, `devices: "${type}"\n${this.output.slice(-2000)}`);
  }

  go(): void {
    this.child.send({ type: 'go' });
  }

  stop(): void {
    if (this.child.connected) this.child.send({ type: 'stop' });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    if (this.child.connected) this.child.disconnect();
    await exited;
    clearTimeout(t);
  }
}
