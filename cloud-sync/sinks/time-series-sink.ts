import type { GatewayStatus } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { TimeSeriesConfig } from '../../core/time-series-config.js';
import type { ReadingStore } from '../reading-store.js';
import { startTimeSeries, type TimeSeriesSinks } from '../time-series/time-series-sinks.js';
import type { DispatchSink } from './dispatch-sink.js';
import type { PublicFeedsSink } from './public-feeds-sink.js';
import type { Sink } from './sink.js';

/**
 * The hub's own records in InfluxDB for the Grafana dashboards (dashboards/):
 * the alarm lifecycle, public alerts, the hub's operations and its gateways
 * (cloud-sync/time-series/). It follows the dispatch and public-feeds sinks,
 * so it starts after them and stops before them.
 */
export class TimeSeriesSink implements Sink {
  readonly name = 'time-series';
  private sinks: TimeSeriesSinks | undefined;

  constructor(private readonly d: { config: TimeSeriesConfig; store: ReadingStore; dispatch: DispatchSink; feeds: PublicFeedsSink; clock: Clock; logger: Logger; metrics: Metrics }) {}

  async start(): Promise<void> {
    const alerts = this.d.feeds.alerts();
    this.sinks = await startTimeSeries({ ...this.d, dispatch: this.d.dispatch.fireDispatch(), ...(alerts ? { publicAlerts: alerts } : {}) });
  }

  async stop(): Promise<void> {
    await this.sinks?.stop();
    this.sinks = undefined;
  }

  onStatus(status: GatewayStatus): void {
    this.sinks?.onStatus(status);
  }
}
