import { AGENCY_SUMMARY_FEED, topics, type AgencySummary, type GatewayStatus } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { AgencyConfig } from '../../core/public-config.js';
import type { AlarmRecord, TransitionRow } from '../alarms/alarm-store.js';
import { agencySummaryLines } from '../influx/line-protocol.js';
import type { Site } from '../registry/site.js';
import type { RetainedSink } from '../public/public-alerts.js';
import { agencySummary } from './agency-summary.js';

export interface AgencySinkDeps {
  config: AgencyConfig;
  sites: { all(): Site[] };
  alarms: { list(): AlarmRecord[]; transitionsSince(since: number): TransitionRow[] };
  /** Districts with a policy of their own in the config (they have a summary even before a site is registered). */
  configuredDistricts: readonly string[];
  retained: RetainedSink;
  /** InfluxDB, when one is configured: the summaries as points. */
  writeRecords?: (lines: readonly string[]) => boolean;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** After a change (an alarm, a gateway coming or going), the summaries follow this soon, once for a burst of changes. */
const SETTLE_MS = 1000;
const DAY_MS = 86_400_000;

/**
 * The agencies' side of cloud-sync, as one sink: per district, what a
 * government agency needs to see that safety works (agency-summary.ts),
 * published as the retained `agency/<district>/summary` (the agency role
 * reads it), answered over HTTP, and recorded in InfluxDB every
 * `intervalSeconds` for dashboards. It hears gateways' status (online,
 * devices silent) and the alarm lifecycle's changes.
 */
export class AgencySink {
  readonly name = 'agency';
  private readonly gateways = new Map<string, { status: GatewayStatus; devices: { id: string; commLost: boolean }[] }>();
  private timer: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;

  constructor(private readonly d: AgencySinkDeps) {}

  async start(): Promise<void> {
    if (!this.d.config.enabled) return;
    this.publish(true);
    this.timer = setInterval(() => this.publish(true), this.d.config.intervalSeconds * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.settle);
  }

  onStatus(status: GatewayStatus): void {
    const key = `${status.site}/${status.gateway}`;
    // The last will carries no health: the devices a gateway last reported stay known (and count as not online).
    const devices = status.health?.devices?.map((x) => ({ id: x.id, commLost: x.commLost })) ?? this.gateways.get(key)?.devices ?? [];
    this.gateways.set(key, { status, devices });
    this.soon();
  }

  /** The lifecycle changed an alarm (its observer). */
  onAlarm(): void {
    this.soon();
  }

  districts(): string[] {
    return [...new Set([...this.d.sites.all().map((s) => s.district), ...this.d.configuredDistricts])].sort();
  }

  summary(district: string): AgencySummary {
    const now = this.d.clock.now();
    const { windowDays } = this.d.config;
    const sites = this.d.sites.all().filter((s) => s.district === district);
    const ids = new Set(sites.map((s) => s.id));
    // The window starts at the first UTC midnight it covers, so every day of it is counted whole.
    const from = Math.floor(now / DAY_MS) * DAY_MS - (windowDays - 1) * DAY_MS;
    return agencySummary({
      district,
      now,
      windowDays,
      sites,
      gateways: [...this.gateways.values()].filter((g) => ids.has(g.status.site)),
      open: this.d.alarms.list().filter((a) => a.district === district),
      transitions: this.d.alarms.transitionsSince(from).filter((t) => t.district === district),
    });
  }

  private soon(): void {
    if (!this.d.config.enabled || this.settle) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      this.publish(false);
    }, SETTLE_MS);
  }

  /** Every district's summary to MQTT; `record`: to InfluxDB too (on the interval, so points come evenly). */
  private publish(record: boolean): void {
    try {
      const lines: string[] = [];
      for (const district of this.districts()) {
        const s = this.summary(district);
        this.d.retained.set(topics.agencyFeed(district, AGENCY_SUMMARY_FEED), JSON.stringify(s));
        this.d.metrics.inc('cosafe_agency_summaries_total');
        if (record) lines.push(...agencySummaryLines(s));
      }
      if (lines.length && this.d.writeRecords && !this.d.writeRecords(lines)) this.d.logger.warn('agency summaries could not be buffered for InfluxDB; the next interval records them again');
    } catch (err) {
      this.d.logger.error({ err: (err as Error).message }, 'could not compute the agency summaries; trying again at the next change or interval');
    }
  }
}
