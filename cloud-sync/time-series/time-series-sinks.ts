import { hostname } from 'node:os';
import type { GatewayStatus } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { TimeSeriesConfig } from '../../core/time-series-config.js';
import type { FireDispatch } from '../dispatch/fire-dispatch.js';
import type { PublicAlerts } from '../public/public-alerts.js';
import type { ReadingStore } from '../reading-store.js';
import { AlarmSeries } from './alarm-series.js';
import { HubOperations } from './hub-operations.js';

export interface TimeSeriesSinks {
  onStatus(status: GatewayStatus): void;
  stop(): Promise<void>;
}

/** The host name as a tag value the contract accepts. */
export function defaultInstance(): string {
  const name = hostname().replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return name || 'hub';
}

/**
 * The sinks that record the hub's own data in InfluxDB for the dashboards:
 * the alarm lifecycle and public alerts (alarm-series.ts), the hub's
 * operations and gateways (hub-operations.ts). Only with InfluxDB: the local
 * store keeps readings only.
 */
export async function startTimeSeries(d: {
  config: TimeSeriesConfig;
  store: ReadingStore;
  dispatch: FireDispatch;
  publicAlerts?: PublicAlerts;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}): Promise<TimeSeriesSinks> {
  const store = d.store;
  if (!d.config.enabled || !store.writeRecords) return { onStatus: () => {}, stop: async () => {} };
  const write = (lines: readonly string[]) => store.writeRecords!(lines);
  const logger = d.logger.child({ component: 'time-series' });
  const common = { write, intervalSeconds: d.config.intervalSeconds, clock: d.clock, logger, metrics: d.metrics };
  const alarms = new AlarmSeries({ ...common, lifecycle: d.dispatch.lifecycle, ...(d.publicAlerts ? { publicAlerts: d.publicAlerts } : {}) });
  const hub = new HubOperations({ ...common, instance: d.config.instance ?? defaultInstance(), pendingDeliveries: () => d.dispatch.pendingCount() });
  await alarms.start();
  await hub.start();
  return {
    onStatus: (status) => hub.onStatus(status),
    async stop() {
      await hub.stop();
      await alarms.stop();
    },
  };
}
