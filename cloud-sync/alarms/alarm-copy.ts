import type { PendingDelivery } from '../dispatch/delivery-log.js';
import type { AlarmRecord, JournalEntry, StoredMessage } from './alarm-store.js';

/**
 * Which write of an alarm's shared copy is the newer (README "Cloud-sync
 * workers", "Alarm state moves with its partition"): the epoch is a counter
 * of the partition, taken in Redis each time a worker claims it, so the
 * writes of a later holder always order after those of an earlier one; the
 * sequence orders one holder's writes (a retried write must not undo a later
 * one). Pure, so that the ordering is tested alone.
 */
export interface CopyVersion {
  epoch: number;
  seq: number;
}

/** What a successor needs to go on with an alarm: the record (escalation step and due time, notified departments, CAP alert id and update count, ack, shelving, public warning) and the rest of its current occurrence. */
export interface AlarmCopy {
  v: 1;
  version: CopyVersion;
  /** The worker that wrote it. */
  worker: string;
  alarm: AlarmRecord;
  /** The event ids applied to the current occurrence: an acknowledgement names one, and a resent one is a duplicate. */
  events: string[];
  /** CAP messages of the current occurrence (its Alert and the latest ones): what Updates and the Cancel reference, and what the API shows. */
  messages: StoredMessage[];
  /** Deliveries not yet confirmed (no 2xx, no PUBACK): the successor sends them again, under the same key (the same webhook-id). */
  pending: PendingDelivery[];
  /** The latest journal entries of the alarm, so the successor's API shows the history of the occurrence. */
  journal: JournalEntry[];
}

/** Above 0: `a` is newer than `b`; 0: the same write; below 0: older. */
export function compareVersions(a: CopyVersion, b: CopyVersion): number {
  return a.epoch - b.epoch || a.seq - b.seq;
}

/** This worker's own knowledge of an alarm of the partition: the version of its local state, and whether that reached Redis. */
export interface LocalCopyState {
  version: CopyVersion | null;
  written: boolean;
}

export interface TakeoverPlan {
  /** Alarms whose shared copy is newer than the local state: imported (the newer copy wins). */
  take: string[];
  /** Alarms whose local state is newer than the shared copy, or that have none: written again under the new epoch. */
  write: string[];
}

/**
 * On taking a partition: for each alarm known here or in Redis, whose state
 * goes on. A shared copy wins unless the local state is strictly newer (its
 * version orders after the copy's: this worker held the partition last and a
 * write did not reach Redis). A local alarm with no version (raised before a
 * lease of its partition was held, or by an earlier version of cosafe) never
 * beats a shared copy, and is written when there is none.
 */
export function planTakeover(local: ReadonlyMap<string, LocalCopyState>, shared: ReadonlyMap<string, CopyVersion>): TakeoverPlan {
  const take: string[] = [];
  const write: string[] = [];
  for (const [id, version] of shared) {
    const mine = local.get(id)?.version;
    if (!mine || compareVersions(version, mine) > 0) take.push(id);
    else if (compareVersions(mine, version) > 0) write.push(id);
  }
  for (const id of local.keys()) if (!shared.has(id)) write.push(id);
  return { take: take.sort(), write: write.sort() };
}

/** The last few messages of the current occurrence kept in a copy; with its Alert, always (Updates and the Cancel reference it). */
export const COPY_MESSAGES = 8;
/** The last journal entries kept in a copy. */
export const COPY_JOURNAL = 40;

/** The messages of a copy: the current occurrence's Alert, and its latest ones. */
export function copyMessages(all: readonly StoredMessage[], a: AlarmRecord): StoredMessage[] {
  const current = all.filter((m) => m.activation === a.activation);
  const alert = current.find((m) => m.id === a.alertId);
  const latest = current.slice(-COPY_MESSAGES);
  return alert && !latest.includes(alert) ? [alert, ...latest] : latest;
}
