import { existsSync, readFileSync, renameSync } from 'node:fs';
import type { AlarmEvent } from '../broker/contract/index.js';
import { crashPoint } from '../core/crash-point.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { AlarmEngine, type EngineSnapshot } from './alarm-engine.js';
import type { ConditionChange, EventOutbox } from './outbox/event-outbox.js';

export interface ConditionStateDeps {
  site: string;
  gateway: string;
  /** The alarm lane of the outbox: where condition state and events are written, together. */
  outbox: EventOutbox;
  /** Writes events and their conditions in one transaction and sends them; their ids, or undefined if the disk refused. */
  record: (events: readonly AlarmEvent[], changes: readonly ConditionChange[]) => number[] | undefined;
  /** The JSON state file of earlier versions, imported once on the first start with an outbox that keeps conditions. */
  legacyStateFile?: string;
  logger: Logger;
  metrics: Metrics;
}

/**
 * The state of every condition (which alarms are active, recent activations
 * for chatter), decided by the alarm engine and kept in the alarm lane of the
 * outbox: each change is written in the same transaction as the event it
 * raises, so after a crash the gateway neither forgets an alarm it reported
 * (and raises it again under a new event id) nor remembers one it never sent.
 *
 * If the disk refuses the transaction, nothing was written: the conditions it
 * touched go back to what the outbox holds, so the next reading decides them
 * again and the alarm is raised then, not lost.
 */
export class ConditionState {
  readonly engine: AlarmEngine;

  constructor(private readonly d: ConditionStateDeps) {
    this.importLegacy();
    this.engine = new AlarmEngine({ site: d.site, gateway: d.gateway, snapshot: d.outbox.snapshot() });
  }

  /** Writes the events and the state they leave behind; their ids in the outbox once both are there, undefined if the disk refused. */
  commit(events: readonly AlarmEvent[]): number[] | undefined {
    if (events.length === 0) return [];
    const keys = [...new Set(events.map((e) => AlarmEngine.keyOf(e)))];
    const changes: ConditionChange[] = keys.map((key) => [key, this.engine.record(key)]);
    const ids = this.d.record(events, changes);
    if (ids) {
      // Test-only (COSAFE_CRASH_AT): the moment an earlier version would have died between the event and its state.
      crashPoint('gateway-event-committed');
      return ids;
    }
    for (const key of keys) {
      let recorded;
      try {
        recorded = this.d.outbox.condition(key);
      } catch {
        // The disk cannot even be read: back to normal, so the next reading raises it again rather than never.
        recorded = undefined;
      }
      this.engine.reset(key, recorded);
    }
    return undefined;
  }

  /** Takes over the JSON state file of an earlier version, once, then moves it aside. */
  private importLegacy(): void {
    const file = this.d.legacyStateFile;
    if (!file || !existsSync(file)) return;
    let snapshot: EngineSnapshot | undefined;
    try {
      snapshot = JSON.parse(readFileSync(file, 'utf8')) as EngineSnapshot;
    } catch (err) {
      // A damaged state file must not keep the gateway from protecting the site.
      this.d.logger.error({ file, err: (err as Error).message }, 'condition state file of an earlier version unreadable; not imported');
    }
    if (snapshot) {
      try {
        if (this.d.outbox.importConditions(snapshot)) this.d.logger.info({ file, conditions: Object.keys(snapshot.conditions).length }, 'imported the condition state of an earlier version into the outbox');
      } catch (err) {
        this.d.metrics.inc('cosafe_edge_state_write_errors_total');
        this.d.logger.error({ file, err: (err as Error).message }, 'could not import the condition state of an earlier version; kept the file for the next start');
        return;
      }
    }
    renameSync(file, `${file}.imported`);
  }
}
