import {
  timeSeries,
  type AlarmChange,
  type AlarmLifecycleState,
  type AlarmSeriesField,
  type HubField,
  type HubGatewayField,
  type PublicAlert,
  type PublicAlertSeriesField,
} from '../../broker/contract/index.js';
import { int, pointLine, type FieldValue } from './line-protocol.js';

/*
 * The hub's own records as line protocol, under the contract's names
 * (broker/contract/time-series.ts): the alarm lifecycle, public alerts and
 * the hub's operations. What the Grafana dashboards (dashboards/) read.
 */

type AlarmTags = Partial<Record<(typeof timeSeries.alarm.tags)[number], string | null>>;

/** What an alarm point is about: the alarm (ISA-18.2: one per site, device and condition). */
export interface AlarmIdentity {
  alarmId: string;
  district: string | null;
  site: string;
  device: string;
  condition: string;
  class: string;
}

/** ISA-18.2 transitions by their from and to states (alarm-states.ts), as `change` names them. */
export function changeOf(from: AlarmLifecycleState | null, to: AlarmLifecycleState | null): AlarmChange | undefined {
  if (to === 'active-unacknowledged') return from === 'active-acknowledged' ? 'reactivate' : 'activate';
  if (to === 'active-acknowledged' || (from === 'returned-unacknowledged' && to === 'normal')) return 'acknowledge';
  if (to === 'returned-unacknowledged') return 'return';
  if (to === 'normal') return 'clear';
  return undefined;
}

const awaitsAck = (s: AlarmLifecycleState | null) => s === 'active-unacknowledged' || s === 'returned-unacknowledged';

function alarmTags(a: AlarmIdentity, record: 'transition' | 'open'): AlarmTags {
  return { district: a.district, site: a.site, device: a.device, condition: a.condition, class: a.class, record };
}

/** One journaled transition of an alarm; `ackSeconds` on an acknowledgement whose activation is known. */
export function alarmTransitionLine(
  t: AlarmIdentity & { at: number; from: AlarmLifecycleState | null; to: AlarmLifecycleState; channel: string; test: boolean; activation?: number; ackSeconds?: number },
): string {
  const fields: Partial<Record<AlarmSeriesField, FieldValue | undefined>> = {
    alarm_id: t.alarmId,
    state: t.to,
    change: changeOf(t.from, t.to),
    open: int(t.to === 'normal' ? 0 : 1),
    unacknowledged: int(awaitsAck(t.to) ? 1 : 0),
    channel: t.channel,
    test: int(t.test ? 1 : 0),
    ...(t.activation !== undefined ? { activation: int(t.activation) } : {}),
    ...(t.ackSeconds !== undefined ? { ack_seconds: t.ackSeconds } : {}),
  };
  return pointLine(timeSeries.alarm.measurement, alarmTags(t, 'transition'), fields, t.at);
}

/** An alarm that is not normal, as it is at `now` (its `since`: when it entered its state). */
export function alarmOpenLine(a: AlarmIdentity & { state: AlarmLifecycleState; activation: number; openSince: number; shelved: boolean }, now: number): string {
  const fields: Partial<Record<AlarmSeriesField, FieldValue>> = {
    alarm_id: a.alarmId,
    state: a.state,
    open: int(1),
    unacknowledged: int(awaitsAck(a.state) ? 1 : 0),
    activation: int(a.activation),
    open_seconds: Math.max(0, Math.round((now - a.openSince) / 100) / 10),
    shelved: int(a.shelved ? 1 : 0),
  };
  return pointLine(timeSeries.alarm.measurement, alarmTags(a, 'open'), fields, now);
}

/** A public alert as its latest message left it, at the time it was first sent (so each message rewrites the one point). */
export function publicAlertLine(alert: PublicAlert, msgType: string, messages: number): string {
  const fields: Partial<Record<PublicAlertSeriesField, FieldValue | undefined>> = {
    alert_id: alert.id,
    msg_type: msgType,
    state: alert.state,
    active: int(alert.state === 'active' ? 1 : 0),
    confirmed: int(alert.confirmed ? 1 : 0),
    messages: int(messages),
    cells: int(alert.area.cells.length),
    resolution: int(alert.area.resolution),
    updated: int(alert.updated),
    ...(alert.ended !== undefined ? { ended: int(alert.ended), duration_seconds: Math.max(0, (alert.ended - alert.sent) / 1000) } : {}),
  };
  return pointLine(timeSeries.publicAlert.measurement, { district: alert.district, hazard: alert.hazard, cell: alert.area.cells[0] }, fields, alert.sent);
}

/** Counters are integers (what happened in the interval), the rest floats. */
export function hubLine(instance: string, fields: Partial<Record<HubField, { int: number } | number>>, now: number): string {
  return pointLine(timeSeries.hub.measurement, { instance }, fields, now);
}

export function hubGatewayLine(instance: string, g: { site: string; gateway: string }, fields: Partial<Record<HubGatewayField, FieldValue>>, now: number): string {
  return pointLine(timeSeries.hubGateway.measurement, { instance, site: g.site, gateway: g.gateway }, fields, now);
}
