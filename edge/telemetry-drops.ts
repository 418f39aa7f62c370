import { TELEMETRY_DROPPED_CONDITION, type AlarmEvent } from '../broker/contract/index.js';
import type { Logger } from '../core/logger.js';
import type { AlarmEngine, SignalSource } from './alarm-engine.js';

/** The gateway's own trouble condition when its outbox drops telemetry (the contract names it: agencies count it). */
export const TELEMETRY_DROPPED = TELEMETRY_DROPPED_CONDITION;
/** The full-outbox trouble clears once the outbox is below this share of its limit (a deadband, so it does not chatter). */
const DROP_CLEAR_RATIO = 0.5;
/** Drops are logged at most this often (each drop is counted at once, by the publisher). */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * Dropped telemetry as trouble (ARCHITECTURE.md, delivery classes: every drop
 * is counted and itself raised as trouble). The outbox was full and dropped its
 * oldest readings: logged at most every 10 s, and raised as trouble of the
 * gateway itself through the normal event path, which never drops events. The
 * condition stays active until the outbox is half empty, so a full outbox
 * raises one event, not one per drop.
 */
export class TelemetryDrops {
  private drops = { sinceLog: 0, loggedAt: 0 };

  constructor(
    private readonly o: { engine: AlarmEngine; self: SignalSource; maxTelemetryReadings: number; logger: Logger },
  ) {}

  dropped(count: number, now: number): AlarmEvent[] {
    const { o } = this;
    this.drops.sinceLog += count;
    if (now - this.drops.loggedAt >= DROP_LOG_EVERY_MS) {
      o.logger.error({ code: 'COSAFE_ERR_OUTBOX_FULL', dropped: this.drops.sinceLog, limit: o.maxTelemetryReadings }, 'outbox full: dropped the oldest readings');
      this.drops = { sinceLog: 0, loggedAt: now };
    }
    const text = `outbox full (${o.maxTelemetryReadings} readings): dropping the oldest telemetry`;
    return o.engine.signal(o.self, { key: TELEMETRY_DROPPED, class: 'trouble', state: 'active', time: now, text });
  }

  /** Clears the trouble once the outbox holds less than half its limit. */
  check(readingsInOutbox: number, now: number): AlarmEvent[] {
    const { o } = this;
    if (!o.engine.isActive(o.self.device.id, TELEMETRY_DROPPED) || readingsInOutbox >= o.maxTelemetryReadings * DROP_CLEAR_RATIO) return [];
    return o.engine.signal(o.self, { key: TELEMETRY_DROPPED, class: 'trouble', state: 'cleared', time: now, text: 'outbox below half full again' });
  }
}
