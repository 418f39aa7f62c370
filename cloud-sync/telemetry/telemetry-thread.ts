import { Worker } from 'node:worker_threads';
import { CosafeError, type ErrorCode } from '../../core/errors.js';
import type { LogLevel } from '../../core/logger.js';
import type { StoreHealth } from '../reading-store.js';
import type { TelemetryLane, TelemetryLaneDeps } from './telemetry-lane.js';
import { applyMetricOps, type FromWorker, type TelemetryWorkerData, type ToWorker } from './worker-protocol.js';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
/** After the worker died: wait this long before starting another (its session kept what it had not acknowledged). */
const RESTART_AFTER_MS = 1000;
const STOP_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 60_000;
const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * The telemetry lane in a worker thread of its own (telemetry-worker.ts):
 * decoding, validating and encoding batches and writing them to the store take
 * about half of the hub's CPU under a heavy load, and on the main thread they
 * held up the broker and the alarm lane in the same event loop. In a worker
 * they run on the other core and the main thread stays responsive.
 *
 * Its metric updates are applied to the process's one registry here, its log
 * lines go through the main logger, and its health is reported twice a second.
 * If the worker dies it is started again after a second; its broker session
 * kept whatever it had not acknowledged, so nothing is lost.
 */
export async function startTelemetryThread(d: TelemetryLaneDeps & { logLevel: LogLevel }): Promise<TelemetryLane> {
  let worker: Worker | undefined;
  let last: { store: StoreHealth; connected: boolean } = { store: { kind: d.config.cloudSync.influx ? 'influxdb' : 'sqlite', ok: false, detail: 'telemetry lane starting' }, connected: false };
  let alarmSubscribed = false;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: (() => void) | undefined;

  const data: TelemetryWorkerData = { config: d.config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), logLevel: d.logLevel };
  const send = (m: ToWorker) => worker?.postMessage(m);

  const relayLog = (line: string) => {
    try {
      const { level, msg, time: _time, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number } & Record<string, unknown>;
      d.logger[PINO_LEVELS[level] ?? 'info']({ ...fields, thread: 'telemetry' }, msg ?? '');
    } catch {
      d.logger.info({ thread: 'telemetry' }, line.trim());
    }
  };

  const spawn = () =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(ENTRY, { workerData: data });
      worker = w;
      let ready = false;
      const startTimer = setTimeout(() => reject(new Error(`the telemetry worker did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'metrics') applyMetricOps(d.metrics, m.ops);
        else if (m.type === 'log') relayLog(m.line);
        else if (m.type === 'health') last = { store: m.store, connected: m.connected };
        else if (m.type === 'ready') {
          ready = true;
          clearTimeout(startTimer);
          if (alarmSubscribed) send({ type: 'alarm-subscribed' });
          resolve();
        } else if (m.type === 'failed') {
          clearTimeout(startTimer);
          reject(m.code ? new CosafeError(m.code as ErrorCode, m.message) : new Error(`the telemetry lane could not start: ${m.message}`));
        } else if (m.type === 'stopped') stopped?.();
      });
      w.on('error', (err) => d.logger.error({ err: err.message, stack: err.stack }, 'the telemetry worker failed'));
      w.on('exit', (code) => {
        clearTimeout(startTimer);
        worker = undefined;
        last = { ...last, connected: false };
        stopped?.();
        if (stopping) return;
        if (!ready) return reject(new Error(`the telemetry worker exited with code ${code} before it started`));
        d.logger.error({ code }, 'the telemetry worker stopped unexpectedly; starting it again (its broker session kept what it had not acknowledged)');
        restartTimer = setTimeout(() => void spawn().catch((err: Error) => d.logger.error({ err: err.message }, 'could not restart the telemetry worker')), RESTART_AFTER_MS);
      });
    });

  await spawn();
  return {
    health: () => last,
    alarmLaneSubscribed: () => {
      alarmSubscribed = true;
      send({ type: 'alarm-subscribed' });
    },
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const w = worker;
      if (!w) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      send({ type: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
      clearTimeout(timer);
      await w.terminate();
    },
  };
}
