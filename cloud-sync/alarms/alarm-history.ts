import type { AlarmLifecycleState } from '../../broker/contract/index.js';
import type { JournalEntry } from './alarm-store.js';

/** One step of an occurrence's timeline, as a person reads it. */
export interface TimelineStep {
  at: number;
  kind: 'raised' | 'delivered' | 'escalated' | 'acknowledged' | 'cleared' | 'raised-again' | 'routed';
  /** Who: the gateway, the department a message reached, the credential that acknowledged, "hub". */
  by: string;
  /** Through what: mqtt-event, webhook, mqtt, http, hub. */
  channel: string;
  /** The operator's name an acknowledgement gave, an escalation step, a delivery's CAP msgType. */
  detail?: string;
}

/** One occurrence of an alarm (ISA-18.2: from activation to its return to normal), with its timeline. */
export interface Occurrence {
  alarmId: string;
  activation: number;
  raisedAt: number;
  firstDeliveredAt: number | null;
  escalations: number;
  acknowledged: { by: string; at: number; channel: string; operator?: string } | null;
  /** When the condition returned to normal (it may still wait for its acknowledgement). */
  clearedAt: number | null;
  state: AlarmLifecycleState;
  timeline: TimelineStep[];
}

/**
 * Rebuilds the occurrences of alarms from their journal (entries of one or
 * more alarms, in journal order): an occurrence starts with the transition
 * that carries a new activation number (A -> B, D -> B), takes every
 * delivery, escalation and acknowledgement journaled after it, and ends when
 * the next one starts. The journal is the record; this is a reading of it.
 */
export function occurrencesOf(entries: readonly JournalEntry[]): Occurrence[] {
  const current = new Map<string, Occurrence>();
  const all: Occurrence[] = [];
  for (const e of entries) {
    const activation = typeof e.detail.activation === 'number' ? e.detail.activation : undefined;
    let o = current.get(e.alarmId);
    if (e.kind === 'transition' && activation !== undefined && activation !== o?.activation && e.to === 'active-unacknowledged') {
      o = { alarmId: e.alarmId, activation, raisedAt: e.at, firstDeliveredAt: null, escalations: 0, acknowledged: null, clearedAt: null, state: e.to, timeline: [] };
      current.set(e.alarmId, o);
      all.push(o);
      o.timeline.push({ at: e.at, kind: 'raised', by: e.actor, channel: e.channel });
      continue;
    }
    if (!o) continue;
    switch (e.kind) {
      case 'transition': {
        if (e.to) o.state = e.to;
        const operator = typeof e.detail.operator === 'string' ? e.detail.operator : undefined;
        if (e.channel === 'mqtt-event') {
          // The edge: the condition cleared, or came back while acknowledged (C -> B).
          if (e.to === 'normal' || e.to === 'returned-unacknowledged') {
            o.clearedAt = e.at;
            o.timeline.push({ at: e.at, kind: 'cleared', by: e.actor, channel: e.channel });
          } else if (e.to === 'active-unacknowledged') {
            o.acknowledged = null;
            o.timeline.push({ at: e.at, kind: 'raised-again', by: e.actor, channel: e.channel });
          }
        } else {
          o.acknowledged = { by: e.actor, at: e.at, channel: e.channel, ...(operator ? { operator } : {}) };
          o.timeline.push({ at: e.at, kind: 'acknowledged', by: e.actor, channel: e.channel, ...(operator ? { detail: operator } : {}) });
        }
        break;
      }
      case 'delivered':
        o.firstDeliveredAt ??= e.at;
        o.timeline.push({ at: e.at, kind: 'delivered', by: e.actor, channel: e.channel, ...(typeof e.detail.msgType === 'string' ? { detail: e.detail.msgType } : {}) });
        break;
      case 'escalated':
        o.escalations++;
        o.timeline.push({ at: e.at, kind: 'escalated', by: e.actor, channel: e.channel, detail: `step ${String(e.detail.step ?? o.escalations)}` });
        break;
      case 'routed':
        o.timeline.push({ at: e.at, kind: 'routed', by: e.actor, channel: e.channel, detail: String(e.detail.fallback ?? '') });
        break;
      default:
        break;
    }
  }
  return all;
}
