import { timeSeries, type AgencySummary, type AgencySummaryField, type AlarmEvent, type ReadingBatch } from '../../broker/contract/index.js';

/*
 * InfluxDB line protocol. Tags stay bounded (site, device, metric, profile);
 * values are fields. The timestamp is the device's reading time in ms, so a
 * resent reading overwrites itself: writes are idempotent.
 */

// Tag keys/values: escape comma, equals sign and space.
const escapeTag = (s: string) => (/[,= \\]/.test(s) ? s.replace(/[,= \\]/g, (c) => `\\${c}`) : s);
// String field values: escape double quote and backslash.
const escapeString = (s: string) => s.replace(/["\\]/g, (c) => `\\${c}`);

export function readingLines(batch: ReadingBatch, out: string[]): void {
  const siteTag = `${timeSeries.reading.measurement},site=${escapeTag(batch.site)}`;
  for (const r of batch.readings) {
    out.push(
      `${siteTag},device=${escapeTag(r.device)},metric=${escapeTag(r.metric)},profile=${escapeTag(r.profile)} value=${r.value},quality="${r.quality}",unit="${escapeString(r.unit)}" ${r.time}`,
    );
  }
}

export function eventLine(e: AlarmEvent): string {
  const fields = [`state="${e.state}"`, `event_id="${e.eventId}"`];
  if (e.value !== undefined) fields.push(`value=${e.value}`);
  if (e.metric !== undefined) fields.push(`metric="${escapeString(e.metric)}"`);
  if (e.text !== undefined) fields.push(`text="${escapeString(e.text)}"`);
  if (e.chattering) fields.push('chattering=true');
  return `${timeSeries.event.measurement},site=${escapeTag(e.site)},device=${escapeTag(e.device)},class=${e.class},condition=${escapeTag(e.condition)} ${fields.join(',')} ${e.time}`;
}

/**
 * A district's agency summary as points: one `agency_summary` at its time, and
 * one `agency_alarms_daily` per day and class at the day's start, so that a
 * day's count is rewritten (not added to) every time it is recorded again.
 */
export function agencySummaryLines(s: AgencySummary): string[] {
  const f: Record<AgencySummaryField, number | null> = {
    sites_registered: s.sites.registered,
    sites_online: s.sites.online,
    gateways_online: s.gateways.online,
    gateways_offline: s.gateways.offline,
    devices_known: s.devices.known,
    devices_online: s.devices.online,
    devices_silent: s.devices.silent,
    devices_in_trouble: s.devices.inTrouble,
    alarms_unacknowledged: s.alarms.open.unacknowledged,
    alarms_acknowledged: s.alarms.open.acknowledged,
    alarms_returned_unacknowledged: s.alarms.open.returnedUnacknowledged,
    ack_count: s.timeToAcknowledge.count,
    ack_median_seconds: s.timeToAcknowledge.medianSeconds,
    ack_p90_seconds: s.timeToAcknowledge.p90Seconds,
    telemetry_drop_episodes: s.drops.telemetryEpisodes,
  };
  const fields = Object.entries(f)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => (k.endsWith('_seconds') ? `${k}=${v}` : `${k}=${v}i`));
  const district = escapeTag(s.district);
  const lines = [`${timeSeries.agencySummary.measurement},district=${district} ${fields.join(',')} ${s.at}`];
  for (const day of s.alarms.perDay) {
    const start = Date.parse(`${day.day}T00:00:00Z`);
    for (const [cls, count] of Object.entries(day.classes)) lines.push(`${timeSeries.agencyAlarmsDaily.measurement},district=${district},class=${cls} count=${count}i ${start}`);
  }
  return lines;
}
