import type { MessagePort } from 'node:worker_threads';
import { pino } from 'pino';
import { systemClock } from '../../core/clock.js';
import { isCosafeError } from '../../core/errors.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import { Metrics } from '../../core/metrics.js';
import { startTelemetryLane } from './telemetry-lane.js';
import { recordMetricOps, type FromWorker, type MetricOp, type TelemetryWorkerData, type ToWorker } from './worker-protocol.js';

const FLUSH_EVERY_MS = 20;
const HEALTH_EVERY_MS = 500;

/**
 * The telemetry lane on the worker thread (core/worker-host.ts; started by
 * telemetry-thread.ts): metric updates and log lines go to the main thread,
 * which owns /metrics and the log; health is reported every half second.
 */
export async function start(port: MessagePort, data: TelemetryWorkerData): Promise<void> {
  const post = (m: FromWorker) => port.postMessage(m);
  const ops: MetricOp[] = [];
  const metrics = new Metrics();
  const sampleGauges = recordMetricOps(metrics, ops);
  const logger = pino({ level: data.logLevel, base: undefined }, { write: (line: string) => post({ type: 'log', line }) });
  // Structured cloning turns Buffers into Uint8Arrays; TLS wants Buffers back.
  const auth: MqttClientAuth | undefined = data.brokerAuth && {
    ...data.brokerAuth,
    ...Object.fromEntries((['ca', 'cert', 'key'] as const).filter((k) => data.brokerAuth?.[k]).map((k) => [k, Buffer.from(data.brokerAuth![k]!)])),
  };
  const flush = () => {
    sampleGauges();
    if (ops.length) post({ type: 'metrics', ops: ops.splice(0) });
  };
  const flushTimer = setInterval(flush, FLUSH_EVERY_MS);
  try {
    const lane = await startTelemetryLane({ config: data.config, brokerUrl: data.brokerUrl, ...(auth ? { brokerAuth: auth } : {}), logger, metrics, clock: systemClock, onSessionClosed: () => post({ type: 'session-closed' }) });
    const report = () => post({ type: 'health', ...lane.health() });
    const healthTimer = setInterval(report, HEALTH_EVERY_MS);
    port.on('message', (m: ToWorker) => {
      if (m.type === 'alarm-subscribed') lane.alarmLaneSubscribed();
      if (m.type === 'partitions') {
        void lane.setPartitions(m.parts).then(
          () => post({ type: 'partitions-applied', id: m.id }),
          (err: Error) => {
            logger.error({ err: err.message }, 'could not change the partitions of the telemetry lane');
            post({ type: 'partitions-applied', id: m.id });
          },
        );
      }
      if (m.type === 'stop') {
        clearInterval(healthTimer);
        void lane.stop().finally(() => {
          clearInterval(flushTimer);
          flush();
          post({ type: 'stopped' });
          port.close();
        });
      }
    });
    report();
    post({ type: 'ready' });
  } catch (err) {
    clearInterval(flushTimer);
    flush();
    post({ type: 'failed', message: (err as Error).message, ...(isCosafeError(err) ? { code: err.code } : {}) });
    port.close();
  }
}
