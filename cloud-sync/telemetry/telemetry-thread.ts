import { CosafeError, type ErrorCode } from '../../core/errors.js';
import type { LogLevel } from '../../core/logger.js';
import { attachWorkerTask, siblingModule, type WorkerTask } from '../../core/worker-host.js';
import type { StoreHealth } from '../reading-store.js';
import type { PartitionSites, TelemetryLane, TelemetryLaneDeps } from './telemetry-lane.js';
import { applyMetricOps, type FromWorker, type TelemetryWorkerData, type ToWorker } from './worker-protocol.js';

const MODULE = siblingModule(import.meta.url, 'telemetry-worker');
/** After the thread died: wait this long before starting another (its session kept what it had not acknowledged). */
const RESTART_AFTER_MS = 1000;
const STOP_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 60_000;
const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * The telemetry lane on the worker thread (telemetry-worker.ts, core/worker-host.ts):
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
  let task: WorkerTask | undefined;
  let last: { store: StoreHealth; connected: boolean } = { store: { kind: d.config.cloudSync.influx ? 'influxdb' : 'sqlite', ok: false, detail: 'telemetry lane starting' }, connected: false };
  let alarmSubscribed = false;
  /** The partitions last asked for: a thread started again after a crash gets them too. */
  let partitions: PartitionSites[] | undefined;
  let partitionsId = 0;
  const applied = new Map<number, () => void>();
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: (() => void) | undefined;

  const data: TelemetryWorkerData = { config: d.config, brokerUrl: d.brokerUrl, ...(d.brokerAuth ? { brokerAuth: d.brokerAuth } : {}), logLevel: d.logLevel };
  const send = (m: ToWorker) => task?.port.postMessage(m);

  const relayLog = (line: string) => {
    try {
      const { level, msg, time: _time, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number } & Record<string, unknown>;
      d.logger[PINO_LEVELS[level] ?? 'info']({ ...fields, thread: 'telemetry' }, msg ?? '');
    } catch {
      d.logger.info({ thread: 'telemetry' }, line.trim());
    }
  };

  const attach = () =>
    new Promise<void>((resolve, reject) => {
      const t = attachWorkerTask(MODULE, data);
      task = t;
      let ready = false;
      const startTimer = setTimeout(() => reject(new Error(`the telemetry lane did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      t.port.on('message', (m: FromWorker | { type: 'load-failed'; message: string }) => {
        if (m.type === 'metrics') applyMetricOps(d.metrics, m.ops);
        else if (m.type === 'log') relayLog(m.line);
        else if (m.type === 'health') last = { store: m.store, connected: m.connected };
        else if (m.type === 'ready') {
          ready = true;
          clearTimeout(startTimer);
          if (alarmSubscribed) send({ type: 'alarm-subscribed' });
          if (partitions) send({ type: 'partitions', id: ++partitionsId, parts: partitions });
          resolve();
        } else if (m.type === 'failed' || m.type === 'load-failed') {
          clearTimeout(startTimer);
          const code = 'code' in m ? m.code : undefined;
          void t.detach();
          reject(code ? new CosafeError(code as ErrorCode, m.message) : new Error(`the telemetry lane could not start: ${m.message}`));
        } else if (m.type === 'stopped') stopped?.();
        else if (m.type === 'session-closed') d.onSessionClosed?.();
        else if (m.type === 'partitions-applied') {
          // This one and every earlier one (a later message supersedes them) are in place.
          for (const [id, done] of applied) if (id <= m.id) (applied.delete(id), done());
        }
      });
      t.onExit((err) => {
        clearTimeout(startTimer);
        task = undefined;
        // The thread's sessions closed with it: nothing waits for them to close any more.
        for (const done of applied.values()) done();
        applied.clear();
        last = { ...last, connected: false };
        stopped?.();
        if (stopping) return;
        if (!ready) return reject(err);
        d.logger.error({ err: err.message }, 'the telemetry lane stopped unexpectedly; starting it again (its broker session kept what it had not acknowledged)');
        restartTimer = setTimeout(() => void attach().catch((e: Error) => d.logger.error({ err: e.message }, 'could not restart the telemetry lane')), RESTART_AFTER_MS);
      });
    });

  await attach();
  return {
    health: () => last,
    alarmLaneSubscribed: () => {
      alarmSubscribed = true;
      send({ type: 'alarm-subscribed' });
    },
    setPartitions(parts) {
      partitions = parts.map((p) => ({ partition: p.partition, sites: [...p.sites] }));
      if (!task) return Promise.resolve(); // applied when the thread is (re)started
      const id = ++partitionsId;
      return new Promise<void>((resolve) => {
        applied.set(id, resolve);
        send({ type: 'partitions', id, parts: partitions! });
      });
    },
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const t = task;
      if (!t) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      send({ type: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
      clearTimeout(timer);
      await t.detach();
    },
  };
}
