import { timeSeries, type AlarmEvent, type ReadingBatch } from '../../broker/contract/index.js';

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
