import { AgencySummary, TELEMETRY_DROPPED_CONDITION, type GatewayStatus, type SignalClass } from '../../broker/contract/index.js';
import type { AlarmRecord, TransitionRow } from '../alarms/alarm-store.js';

export interface AgencyInputs {
  district: string;
  now: number;
  windowDays: number;
  /** Sites of the district (registry). */
  sites: readonly { id: string }[];
  /** Last status of every gateway of the district's sites, with the devices it last reported. */
  gateways: readonly { status: GatewayStatus; devices: readonly { id: string; commLost: boolean }[] }[];
  /** The district's alarms that are not normal. */
  open: readonly AlarmRecord[];
  /** The district's journaled transitions of the window, oldest first. */
  transitions: readonly TransitionRow[];
}

const DAY_MS = 86_400_000;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The q-quantile of sorted values, interpolated between the closest ranks (Hyndman & Fan type 7, as numpy and R default). */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** A new occurrence: ISA-18.2 A -> B or D -> B. */
const activates = (t: TransitionRow) => t.to === 'active-unacknowledged' && (t.from === 'normal' || t.from === 'returned-unacknowledged');
/** An acknowledgement by a person (B -> C or D -> A, through HTTP or MQTT; not the hub's timers). */
const acknowledges = (t: TransitionRow) => (t.channel === 'http' || t.channel === 'mqtt') && ((t.from === 'active-unacknowledged' && t.to === 'active-acknowledged') || (t.from === 'returned-unacknowledged' && t.to === 'normal'));

/**
 * One district's summary for agencies, from the registry, the gateways'
 * status and the alarm journal. Counts only: no site, device or reading
 * leaves here. Pure, so the statistics can be checked by hand.
 */
export function agencySummary(i: AgencyInputs): AgencySummary {
  const online = i.gateways.filter((g) => g.status.state === 'online');
  const onlineSites = new Set(online.map((g) => g.status.site));
  const devices = i.gateways.flatMap((g) => g.devices.map((d) => ({ key: `${g.status.site}/${d.id}`, silent: g.status.state === 'online' && d.commLost, up: g.status.state === 'online' && !d.commLost })));
  const inTrouble = new Set(i.open.filter((a) => a.class === 'trouble' || a.class === 'supervisory').map((a) => `${a.site}/${a.device}`));

  const days = new Map<string, Partial<Record<SignalClass, number>>>();
  for (let d = i.windowDays - 1; d >= 0; d--) days.set(utcDay(i.now - d * DAY_MS), {});
  const activatedAt = new Map<string, number>();
  const ackSeconds: number[] = [];
  let dropEpisodes = 0;
  for (const t of i.transitions) {
    if (activates(t)) {
      activatedAt.set(t.alarmId, t.at);
      // A walk test is not an alarm: it is not counted, and its acknowledgement not timed.
      if (t.test) {
        activatedAt.delete(t.alarmId);
        continue;
      }
      const day = days.get(utcDay(t.at));
      if (day) day[t.class] = (day[t.class] ?? 0) + 1;
      if (t.condition === TELEMETRY_DROPPED_CONDITION) dropEpisodes++;
    } else if (acknowledges(t)) {
      const since = activatedAt.get(t.alarmId);
      if (since !== undefined) ackSeconds.push((t.at - since) / 1000);
      activatedAt.delete(t.alarmId);
    }
  }
  ackSeconds.sort((a, b) => a - b);
  const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  return AgencySummary.parse({
    v: 1,
    district: i.district,
    at: i.now,
    sites: { registered: i.sites.length, online: i.sites.filter((s) => onlineSites.has(s.id)).length },
    gateways: { online: online.length, offline: i.gateways.length - online.length },
    devices: { known: new Set(devices.map((d) => d.key)).size, online: devices.filter((d) => d.up).length, silent: devices.filter((d) => d.silent).length, inTrouble: inTrouble.size },
    alarms: {
      open: {
        unacknowledged: i.open.filter((a) => a.state === 'active-unacknowledged').length,
        acknowledged: i.open.filter((a) => a.state === 'active-acknowledged').length,
        returnedUnacknowledged: i.open.filter((a) => a.state === 'returned-unacknowledged').length,
      },
      perDay: [...days].map(([day, classes]) => ({ day, classes })),
    },
    timeToAcknowledge: { count: ackSeconds.length, medianSeconds: round(quantile(ackSeconds, 0.5)), p90Seconds: round(quantile(ackSeconds, 0.9)), windowDays: i.windowDays },
    drops: { telemetryEpisodes: dropEpisodes, windowDays: i.windowDays },
  });
}
