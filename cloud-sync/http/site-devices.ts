import type { GatewayStatus, SignalClass } from '../../broker/contract/index.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import type { StoredReading } from '../reading-store.js';

/**
 * A device's state in one word, worst first: an active alarm (fire, gas, CO,
 * waterflow, intrusion), trouble to fix (a trouble or supervisory condition,
 * a low battery), silent (its gateway does not hear it, or the gateway itself
 * is offline), ok, or unknown (nothing heard since the hub started).
 */
export type DeviceState = 'alarm' | 'trouble' | 'silent' | 'ok' | 'unknown';

export interface DeviceView {
  id: string;
  gateway: string | null;
  profile: string | null;
  transport: string | null;
  location: string | null;
  state: DeviceState;
  /** When the gateway last heard it. */
  lastSeen: number | null;
  readings: Pick<StoredReading, 'metric' | 'value' | 'unit' | 'quality' | 'time'>[];
  battery: { value: number; time: number; low: boolean } | null;
  /** Active conditions of the device at the hub (alarms not back to normal), with who acknowledged them. */
  conditions: { alarmId: string; condition: string; class: SignalClass; state: AlarmRecord['state']; since: number; text: string | null; ack: AlarmRecord['ack'] }[];
  /** What the owner should do, in words. */
  fix: string[];
}

export interface GatewayView {
  gateway: string;
  state: 'online' | 'offline';
  since: number;
  /** The gateway's outbox: what waits for the hub. */
  waiting: { events: number; readings: number } | null;
}

/** A battery at or below this is reported to be replaced (most smoke detectors chirp at 10-20 %). */
export const LOW_BATTERY_PERCENT = 20;

const ALARM_CLASSES: ReadonlySet<SignalClass> = new Set(['fire', 'gas', 'co', 'waterflow', 'intrusion']);
const RANK: Record<DeviceState, number> = { alarm: 0, trouble: 1, silent: 2, unknown: 3, ok: 4 };

/**
 * What a building owner sees of one site: every device its gateways report (or
 * that sent readings or alarms), its state in one word, its last values and
 * battery, its active conditions, and what to fix; worst first. Pure: built
 * from the gateways' last status, the latest readings and the alarms.
 */
export function siteDevices(input: { site: string; statuses: readonly GatewayStatus[]; latest: readonly StoredReading[]; alarms: readonly AlarmRecord[] }): { devices: DeviceView[]; gateways: GatewayView[] } {
  const statuses = input.statuses.filter((s) => s.site === input.site);
  const devices = new Map<string, DeviceView>();
  const device = (id: string): DeviceView => {
    let d = devices.get(id);
    if (!d) {
      d = { id, gateway: null, profile: null, transport: null, location: null, state: 'unknown', lastSeen: null, readings: [], battery: null, conditions: [], fix: [] };
      devices.set(id, d);
    }
    return d;
  };
  const offline = new Set<string>();
  for (const s of statuses) {
    if (s.state === 'offline') offline.add(s.gateway);
    for (const h of s.health?.devices ?? []) {
      const d = device(h.id);
      Object.assign(d, { gateway: s.gateway, profile: h.profile, transport: h.transport, lastSeen: h.lastSeen, ...(h.location ? { location: h.location } : {}) });
      if (h.commLost) d.state = 'silent';
    }
  }
  for (const r of input.latest) {
    if (r.site !== input.site) continue;
    const d = device(r.device);
    d.readings.push({ metric: r.metric, value: r.value, unit: r.unit, quality: r.quality, time: r.time });
    if (r.metric === 'battery') d.battery = { value: r.value, time: r.time, low: r.value <= LOW_BATTERY_PERCENT };
  }
  for (const a of input.alarms) {
    if (a.site !== input.site || a.state === 'normal') continue;
    const d = device(a.device);
    d.location ??= a.lastEvent.location ?? null;
    d.gateway ??= a.lastEvent.gateway;
    d.conditions.push({ alarmId: a.id, condition: a.condition, class: a.class, state: a.state, since: a.since, text: a.lastEvent.text ?? null, ack: a.ack });
  }
  for (const d of devices.values()) {
    const active = d.conditions.filter((c) => c.state !== 'returned-unacknowledged');
    const gatewayOffline = d.gateway !== null && offline.has(d.gateway);
    if (active.some((c) => ALARM_CLASSES.has(c.class))) d.state = 'alarm';
    else if (active.some((c) => c.class === 'trouble' || c.class === 'supervisory') || d.battery?.low) d.state = 'trouble';
    else if (d.state === 'silent' || gatewayOffline) d.state = 'silent';
    else if (d.lastSeen !== null || d.readings.length > 0) d.state = 'ok';
    if (gatewayOffline) d.fix.push(`its gateway ${d.gateway} is offline: check the gateway's power and network`);
    else if (d.state === 'silent' || active.some((c) => c.condition === 'comm-lost')) d.fix.push('the gateway does not hear it: check its power, battery and wiring (or radio range)');
    if (d.battery?.low) d.fix.push(`battery at ${d.battery.value} %: replace it`);
    for (const c of active) if ((c.class === 'trouble' || c.class === 'supervisory') && c.condition !== 'comm-lost') d.fix.push(c.text ? `${c.class}: ${c.text}` : `${c.class}: ${c.condition}`);
    d.readings.sort((x, y) => x.metric.localeCompare(y.metric));
  }
  const gateways = statuses.map((s) => ({
    gateway: s.gateway,
    state: s.state,
    since: s.since,
    waiting: s.health?.outbox ? { events: s.health.outbox.events, readings: s.health.outbox.readings } : null,
  }));
  return { devices: [...devices.values()].sort((x, y) => RANK[x.state] - RANK[y.state] || x.id.localeCompare(y.id)), gateways };
}
