import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Identity } from '../broker/auth/identity.js';
import { loadGateway, loadSite } from './workload.js';

export interface WorkerParams {
  /** One broker, or the brokers of a cluster: publisher i logs in to brokerForPublisher(i, brokerUrls). */
  brokerUrls: string[];
  runId: string;
  sitePrefix: string;
  publishers: number;
  batchesPerPublisher: number;
  readingsPerBatch: number;
  maxInFlight: number;
  /** Total for all publishers; 0 or absent: as fast as PUBACKs come back. */
  readingsPerSecond?: number;
  /** Epoch ms the readings' times start from. */
  t0: number;
  /** Keep publishing past `batchesPerPublisher` until told to stop (load held up for the alarm probe). */
  untilStop: boolean;
}

export interface MqttLogin {
  username: string;
  password: string;
}

export const LOGINS_ENV = 'COSAFE_BENCH_MQTT_LOGINS';

export type ToWorker = { type: 'go' } | { type: 'stop' };

export interface WorkerDone {
  type: 'done';
  batches: number;
  readings: number;
  perGateway: number[];
  firstPublishAt: number;
  /** Last PUBACK the publishers received (epoch ms). */
  lastAckAt: number;
  cpuMs: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'started'; at: number }
  | { type: 'fixed-done'; at: number }
  | { type: 'progress'; ackedReadings: number; at: number }
  | { type: 'error'; message: string }
  | WorkerDone;

/** Each publisher is a gateway of its own site, as the broker's ACL expects of whoever publishes readings there. */
export function publisherIdentities(o: { runId: string; sitePrefix: string; publishers: number }): Identity[] {
  return Array.from({ length: o.publishers }, (_, i) => ({ role: 'gateway', id: `@bench-${o.runId}-gw-${i}`, site: loadSite(o.sitePrefix, i), gateway: loadGateway(i) }));
}

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'publisher-worker.ts');

/**
 * The bench's handle on the publisher process. Every wait has a deadline, and
 * `kill()` is safe to call at any time (it is what the cleanup path does).
 */
export class PublisherProcess {
  readonly child: ChildProcess;
  startedAt: number | undefined;
  fixedDoneAt: number | undefined;
  /** Readings the broker has acknowledged so far (updated every 100 ms). */
  ackedReadings = 0;
  private output = '';
  private failure: Error | undefined;
  private readonly listeners = new Set<(m: FromWorker) => void>();
  /** The last message of each type, for a wait that starts after it came. */
  private readonly seen = new Map<FromWorker['type'], FromWorker>();

  /** `logins`: one broker login per publisher; passed in the environment, not on the command line, where `ps` shows it. */
  constructor(params: WorkerParams, logins: MqttLogin[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(params)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, [LOGINS_ENV]: JSON.stringify(logins) },
    });
    this.child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.on('message', (m: FromWorker) => {
      this.seen.set(m.type, m);
      if (m.type === 'started') this.startedAt = m.at;
      if (m.type === 'fixed-done') this.fixedDoneAt = m.at;
      if (m.type === 'progress') this.ackedReadings = m.ackedReadings;
      if (m.type === 'done') this.ackedReadings = m.readings;
      if (m.type === 'error') this.failure = new Error(`publisher worker: ${m.message}`);
      for (const l of this.listeners) l(m);
    });
    this.child.on('exit', (code, signal) => {
      if (code !== 0 && !this.failure) this.failure = new Error(`publisher worker exited with ${code ?? signal}: ${this.output.slice(-2000)}`);
      for (const l of this.listeners) l({ type: 'error', message: this.failure?.message ?? 'exited' });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves on the first message of `type`; rejects on a worker error or after `timeoutMs`. */
  waitFor<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`publisher worker: no "${type}" within ${timeoutMs} ms\n${this.output.slice(-2000)}`));
      }, timeoutMs);
      const listener = (m: FromWorker) => {
        if (m.type !== type && m.type !== 'error') return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        if (m.type === 'error') reject(this.failure ?? new Error(m.message));
        else resolve(m as Extract<FromWorker, { type: T }>);
      };
      const already = this.seen.get(type);
      if (already) return listener(already);
      if (this.failure) return listener({ type: 'error', message: this.failure.message });
      this.listeners.add(listener);
    });
  }

  go(): void {
    this.send({ type: 'go' });
  }

  stop(): void {
    this.send({ type: 'stop' });
  }

  /** Waits for the process to exit by itself; SIGKILL after `graceMs`. */
  async kill(graceMs = 2000): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
    if (c.connected) c.disconnect();
    await exited;
    clearTimeout(timer);
  }

  private send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }
}
