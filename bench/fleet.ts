import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './wait.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'fleet-worker.ts');

export interface DeviceLogin {
  device: string;
  username: string;
  password: string;
}

/** What one fleet process gets (in a file of its own, 0600: it holds secrets, and `ps` would show argv). */
export interface FleetParams {
  host: string;
  port: number;
  site: string;
  logins: DeviceLogin[];
}

export type ToFleet =
  | { type: 'connect' }
  /** Each device publishes `perDevice` readings, at most `window` awaiting PUBACK, stamped `t0`, `t0 + 1`, ... ms. */
  | { type: 'flood'; perDevice: number; window: number; t0: number }
  /** Each device one reading every `everyMs`, spread evenly, until `stop`. */
  | { type: 'paced'; everyMs: number }
  | { type: 'stop' }
  | { type: 'drop' };

export type FromFleet =
  | { type: 'ready' }
  | { type: 'connected'; startedAt: number; lastAt: number; ok: number; refused: Record<string, number>; cpuMs: number }
  | { type: 'flooded'; published: number; acked: number; failed: number; firstAt: number; lastAckAt: number; cpuMs: number }
  | { type: 'paced-done'; published: number; acked: number; failed: number; cpuMs: number }
  | { type: 'dropped' };

type Of<T extends FromFleet['type']> = Extract<FromFleet, { type: T }>;

/** One fleet process (fleet-worker.ts). */
class FleetProcess {
  readonly child: ChildProcess;
  private output = '';
  private readonly waiters: { type: string; resolve: (m: FromFleet) => void }[] = [];
  private readonly seen = new Map<string, FromFleet>();

  constructor(paramsFile: string) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, paramsFile], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.on('message', (m: FromFleet) => {
      const w = this.waiters.findIndex((x) => x.type === m.type);
      if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(m);
      else this.seen.set(m.type, m);
    });
  }

  /** The next message of `type` (or one that came before anyone waited). */
  next<T extends FromFleet['type']>(type: T, ms: number): Promise<Of<T>> {
    const early = this.seen.get(type);
    if (early) {
      this.seen.delete(type);
      return Promise.resolve(early as Of<T>);
    }
    return withTimeout(new Promise<Of<T>>((resolve) => this.waiters.push({ type, resolve: resolve as (m: FromFleet) => void })), ms, `devices: "${type}"\n${this.output.slice(-2000)}`);
  }

  send(m: ToFleet): void {
    if (this.child.connected) this.child.send(m);
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

export interface FleetConnect {
  devices: number;
  connected: number;
  /** CONNACK return codes other than 0 (-1: closed before a CONNACK), per code. */
  refused: Record<string, number>;
  /** First CONNECT sent to the last CONNACK received, all processes. */
  ms: number;
  /** CPU of the fleet's processes meanwhile (the load generator's, not the hub's). */
  generatorCpuMs: number;
}

export interface FleetFlood {
  published: number;
  acked: number;
  failed: number;
  firstAt: number;
  lastAckAt: number;
  generatorCpuMs: number;
}

/**
 * The bench's MQTT devices (the devices phase, fleet-phase.ts), each with its own credential and connection,
 * spread over `processes` processes so that the load generator has cores of
 * its own share and never is the bottleneck.
 */
export class LoginFleet {
  private readonly procs: FleetProcess[];
  private readonly dir: string;

  constructor(o: { host: string; port: number; site: string; logins: DeviceLogin[]; processes: number }) {
    this.dir = mkdtempSync(join(tmpdir(), 'cosafe-fleet-'));
    this.procs = Array.from({ length: o.processes }, (_, p) => {
      const file = join(this.dir, `fleet-${p}.json`);
      const logins = o.logins.filter((_, i) => i % o.processes === p);
      writeFileSync(file, JSON.stringify({ host: o.host, port: o.port, site: o.site, logins } satisfies FleetParams), { mode: 0o600 });
      return new FleetProcess(file);
    });
  }

  get pids(): number[] {
    return this.procs.map((p) => p.child.pid ?? 0);
  }

  async ready(ms: number): Promise<void> {
    await Promise.all(this.procs.map((p) => p.next('ready', ms)));
  }

  /** Every device connects at once, as a fleet does after the hub restarted. */
  async connect(ms: number): Promise<FleetConnect> {
    const waits = this.procs.map((p) => p.next('connected', ms));
    for (const p of this.procs) p.send({ type: 'connect' });
    const all = await Promise.all(waits);
    const refused: Record<string, number> = {};
    for (const r of all) for (const [code, n] of Object.entries(r.refused)) refused[code] = (refused[code] ?? 0) + n;
    const connected = all.reduce((a, r) => a + r.ok, 0);
    return {
      devices: connected + Object.values(refused).reduce((a, b) => a + b, 0),
      connected,
      refused,
      ms: Math.round(Math.max(...all.map((r) => r.lastAt)) - Math.min(...all.map((r) => r.startedAt))),
      generatorCpuMs: Math.round(all.reduce((a, r) => a + r.cpuMs, 0)),
    };
  }

  async flood(o: { perDevice: number; window: number; t0: number; timeoutMs: number }): Promise<FleetFlood> {
    const waits = this.procs.map((p) => p.next('flooded', o.timeoutMs));
    for (const p of this.procs) p.send({ type: 'flood', perDevice: o.perDevice, window: o.window, t0: o.t0 });
    const all = await Promise.all(waits);
    const sum = (k: 'published' | 'acked' | 'failed' | 'cpuMs') => all.reduce((a, r) => a + r[k], 0);
    return { published: sum('published'), acked: sum('acked'), failed: sum('failed'), firstAt: Math.min(...all.map((r) => r.firstAt)), lastAckAt: Math.max(...all.map((r) => r.lastAckAt)), generatorCpuMs: Math.round(sum('cpuMs')) };
  }

  paced(everyMs: number): void {
    for (const p of this.procs) p.send({ type: 'paced', everyMs });
  }

  async stopPaced(ms: number): Promise<{ published: number; acked: number; failed: number; generatorCpuMs: number }> {
    const waits = this.procs.map((p) => p.next('paced-done', ms));
    for (const p of this.procs) p.send({ type: 'stop' });
    const all = await Promise.all(waits);
    return { published: all.reduce((a, r) => a + r.published, 0), acked: all.reduce((a, r) => a + r.acked, 0), failed: all.reduce((a, r) => a + r.failed, 0), generatorCpuMs: Math.round(all.reduce((a, r) => a + r.cpuMs, 0)) };
  }

  /** Every connection cut at once. */
  async drop(ms: number): Promise<void> {
    const waits = this.procs.map((p) => p.next('dropped', ms));
    for (const p of this.procs) p.send({ type: 'drop' });
    await Promise.all(waits);
  }

  async kill(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
