import { timeSeries } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { AlarmRecord, TransitionRow } from '../alarms/alarm-store.js';
import { alarmOpenLine, alarmTransitionLine, changeOf, publicAlertLine } from '../influx/record-lines.js';
import type { PublicMessage } from '../public/public-alert-store.js';
import { recordPoints, type WriteRecords } from './record-writer.js';

export interface AlarmSeriesDeps {
  /** The alarm lifecycle: its journal, its alarms, and its observer. */
  lifecycle: {
    list(filter?: { includeNormal?: boolean }): AlarmRecord[];
    transitionsSince(since: number): TransitionRow[];
    observe(observer: (a: AlarmRecord) => void): () => void;
  };
  /** The public alerts, when residents' alerts run. */
  publicAlerts?: { listen(listener: (m: PublicMessage) => void): () => void };
  write: WriteRecords;
  intervalSeconds: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** At start, the journal of this long ago is written again (idempotent: same series, same times), for what a crash held back. */
const REWRITE_MS = 86_400_000;

/**
 * The alarm lifecycle and the public alerts in InfluxDB, for the district and
 * site dashboards (names in broker/contract/time-series.ts):
 *
 * - every journaled transition, read from the lifecycle's journal (the durable
 *   record, so a point not buffered is written at the next change or start),
 *   with the time to acknowledge on acknowledgements;
 * - every `intervalSeconds`, every alarm that is not normal (`record=open`),
 *   so that "open now" does not depend on when it became active;
 * - every public alert, rewritten with each of its messages.
 */
export class AlarmSeries {
  readonly name = 'alarm-series';
  /** The journal is written up to here (ms): rows at this time are read again, which rewrites them harmlessly. */
  private cursor = 0;
  /** When each alarm's current occurrence activated, for its time to acknowledge. */
  private readonly activatedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly d: AlarmSeriesDeps) {}

  async start(): Promise<void> {
    this.cursor = this.d.clock.now() - REWRITE_MS;
    this.writeTransitions();
    this.unsubscribe.push(this.d.lifecycle.observe(() => this.soon()));
    if (this.d.publicAlerts) this.unsubscribe.push(this.d.publicAlerts.listen((m) => this.writePublic(m)));
    this.writeOpen();
    this.timer = setInterval(() => this.writeOpen(), this.d.intervalSeconds * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
    // What changed last is in the journal; the next start writes it.
    if (this.pending) this.writeTransitions();
  }

  /** A burst of changes (one event, its deliveries) is read from the journal once. */
  private soon(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.writeTransitions();
    });
  }

  private writeTransitions(): void {
    const rows = this.d.lifecycle.transitionsSince(this.cursor);
    if (rows.length === 0) return;
    const ok = recordPoints(this.d, timeSeries.alarm.measurement, rows, (t) => {
      const change = changeOf(t.from, t.to);
      let ackSeconds: number | undefined;
      if (change === 'activate') {
        // A walk test is not an alarm: its acknowledgement is not timed (as in the agencies' statistics).
        if (t.test) this.activatedAt.delete(t.alarmId);
        else this.activatedAt.set(t.alarmId, t.at);
      } else if (change === 'acknowledge') {
        const since = this.activatedAt.get(t.alarmId);
        if (since !== undefined) ackSeconds = (t.at - since) / 1000;
        this.activatedAt.delete(t.alarmId);
      } else if (change === 'clear') this.activatedAt.delete(t.alarmId);
      return alarmTransitionLine({
        alarmId: t.alarmId,
        district: t.district,
        site: t.site,
        device: t.device,
        condition: t.condition,
        class: t.class,
        at: t.at,
        from: t.from,
        to: t.to!,
        channel: t.channel,
        test: Boolean(t.test),
        ...(ackSeconds !== undefined ? { ackSeconds } : {}),
      });
    });
    // Not buffered: the journal keeps them, the next change reads them again.
    if (ok) this.cursor = rows.at(-1)!.at;
  }

  private writeOpen(): void {
    try {
      const now = this.d.clock.now();
      const open = this.d.lifecycle.list().filter((a) => a.state !== 'normal');
      recordPoints(this.d, timeSeries.alarm.measurement, open, (a) =>
        alarmOpenLine(
          {
            alarmId: a.id,
            district: a.district,
            site: a.site,
            device: a.device,
            condition: a.condition,
            class: a.class,
            state: a.state,
            activation: a.activation,
            openSince: a.dispatchedAt ?? a.since,
            shelved: a.shelved !== null && a.shelved.until > now,
          },
          now,
        ),
      );
    } catch (err) {
      this.d.metrics.inc('cosafe_timeseries_errors_total', { measurement: timeSeries.alarm.measurement });
      this.d.logger.error({ err: (err as Error).message }, 'could not record the open alarms; trying again at the next interval');
    }
  }

  private writePublic(m: PublicMessage): void {
    recordPoints(this.d, timeSeries.publicAlert.measurement, [m], (x) => publicAlertLine(x.alert, x.msgType, x.n));
  }
}
