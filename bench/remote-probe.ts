import { spawn, type ChildProcess } from 'node:child_process';
import type { AlarmProbeOptions, AlarmSample } from './alarm-probe.js';
import { withTimeout } from './wait.js';

const PROCESS = new URL('./probe-process.ts', import.meta.url).pathname;

/** What the probe needs, without functions (they do not cross to the process): the gateway's /health instead of `isActive`. */
export type ProbeOptions = Omit<AlarmProbeOptions, 'isActive'> & { gatewayHealth: { url: string; headers: Record<string, string> } };

/** The probe process's own event loop delay over a span: the stopwatch's resolution then. */
export type ProbeLoopDelay = { maxMs: number; p99Ms: number };

type Update = { index: number; sample: AlarmSample };
export type ToProbe =
  | { type: 'receiver'; id: number; secret: string }
  | { type: 'start'; id: number; options: ProbeOptions }
  | { type: 'stop'; id: number }
  | { type: 'toggle'; id: number; timeoutMs: number }
  | { type: 'quiet' }
  | { type: 'missing'; id: number; graceMs: number }
  | { type: 'rejected'; id: number }
  | { type: 'loop'; id: number }
  | { type: 'exit' };
export type FromProbe =
  | { type: 'reply'; id: number; value: unknown }
  | { type: 'sample'; id: number; index: number; sample: AlarmSample; updates: Update[] }
  | { type: 'missing'; id: number; value: number; updates: Update[] }
  | { type: 'error'; id: number; message: string };

/** A message that is answered, before its id is given. */
type Request = ToProbe extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

/** What the phases use of a probe: toggles timed, the samples so far, quiet readings, stragglers. */
export interface Stopwatch {
  readonly samples: AlarmSample[];
  toggle(timeoutMs: number): Promise<AlarmSample>;
  publishQuiet(): void;
  missing(graceMs: number): Promise<number>;
}

/**
 * The alarm probe and the fire department's receiver, run in a process of
 * their own (probe-process.ts) so that the bench's own work never stops the
 * stopwatch. The samples come back here; one that arrives after its timeout
 * gets its time with the next answer.
 */
export class RemoteProbe implements Stopwatch {
  readonly samples: AlarmSample[] = [];
  private readonly child: ChildProcess;
  private nextId = 1;
  private output = '';
  private readonly waiting = new Map<number, { resolve: (m: FromProbe) => void; reject: (e: Error) => void }>();

  private constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', PROCESS], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-4000)));
    this.child.stderr?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-4000)));
    this.child.on('message', (m: FromProbe) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.type === 'error') w.reject(new Error(`alarm probe: ${m.message}`));
      else w.resolve(m);
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the alarm probe's process exited (${code})\n${this.output}`));
      this.waiting.clear();
    });
  }

  /** Starts the process and its webhook receiver; `url` is where the hub sends the fire department's webhooks. */
  static async launch(secret: string): Promise<{ probe: RemoteProbe; url: string }> {
    const probe = new RemoteProbe();
    const url = (await probe.ask({ type: 'receiver', secret }, 30_000)) as string;
    return { probe, url };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Points the detector and observers at a broker (again, for each stack of the run). */
  async start(options: ProbeOptions): Promise<void> {
    this.samples.length = 0;
    await this.ask({ type: 'start', options }, 30_000);
  }

  async stop(): Promise<void> {
    await this.ask({ type: 'stop' }, 30_000);
  }

  async toggle(timeoutMs: number): Promise<AlarmSample> {
    const m = (await this.request({ type: 'toggle', timeoutMs }, timeoutMs + 30_000)) as Extract<FromProbe, { type: 'sample' }>;
    this.apply(m.updates);
    this.samples[m.index] = m.sample;
    return m.sample;
  }

  publishQuiet(): void {
    if (this.child.connected) this.child.send({ type: 'quiet' } satisfies ToProbe);
  }

  async missing(graceMs: number): Promise<number> {
    const m = (await this.request({ type: 'missing', graceMs }, graceMs + 30_000)) as Extract<FromProbe, { type: 'missing' }>;
    this.apply(m.updates);
    return m.value;
  }

  /** Webhooks whose signature did not verify. */
  async rejected(): Promise<number> {
    return (await this.ask({ type: 'rejected' }, 10_000)) as number;
  }

  /** The probe process's own event loop delay since the last call: the stopwatch's resolution. */
  async loopDelay(): Promise<ProbeLoopDelay> {
    return (await this.ask({ type: 'loop' }, 10_000)) as ProbeLoopDelay;
  }

  async close(): Promise<void> {
    if (!this.child.connected) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'exit' } satisfies ToProbe);
    await withTimeout(exited, 10_000, 'the alarm probe to exit').catch(() => this.child.kill('SIGKILL'));
  }

  /** A late sample that arrived since: the same object here gets its time. */
  private apply(updates: Update[]): void {
    for (const u of updates) {
      const s = this.samples[u.index];
      if (s) Object.assign(s, u.sample);
    }
  }

  private async ask(m: Request, ms: number): Promise<unknown> {
    return ((await this.request(m, ms)) as Extract<FromProbe, { type: 'reply' }>).value;
  }

  private request(m: Request, ms: number): Promise<FromProbe> {
    const id = this.nextId++;
    const reply = new Promise<FromProbe>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.child.send({ ...m, id } as ToProbe);
    return withTimeout(reply, ms, `the alarm probe to answer "${m.type}"\n${this.output}`);
  }
}
