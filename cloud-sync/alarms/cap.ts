import { create } from 'xmlbuilder2';
import type { AlarmEvent, CapMsgType, SignalClass } from '../../broker/contract/index.js';
import type { Site } from '../registry/site.js';

/** CAP 1.2 §3.2.1: the namespace of every alert. */
export const CAP_NAMESPACE = 'urn:oasis:names:tc:emergency:cap:1.2';
export const CAP_CONTENT_TYPE = 'application/cap+xml';

export type CapStatus = 'Actual' | 'Exercise' | 'Test';

/** CAP 1.2 §3.2.1 references: "sender,identifier,sent" of an earlier message. */
export interface CapReference {
  sender: string;
  identifier: string;
  sent: number;
}

export interface CapAlertInput {
  identifier: string;
  sender: string;
  /** When the message was made, ms since the epoch. */
  sent: number;
  status: CapStatus;
  msgType: CapMsgType;
  /** Update and Cancel: the messages they update or cancel (the first is the Alert). */
  references?: readonly CapReference[];
  /** CAP incidents: the hub's alarm and activation, so all messages of one occurrence group together. */
  incident: string;
  alarmId: string;
  /** The district the message is restricted to; absent for a site the registry does not know. */
  district?: string;
  event: AlarmEvent;
  site?: Site;
  /** Why this message was sent ("escalation step 2: not acknowledged within 90 s"). */
  note?: string;
  /** Minutes east of UTC of `sent`; default: the hub's time zone at that moment. */
  utcOffsetMinutes?: number;
}

interface ClassText {
  category: string[];
  event: string;
  severity: 'Extreme' | 'Severe' | 'Moderate' | 'Minor';
}

/** CAP 1.2 §3.2.2 category, event and severity per signal class (NFPA 72 alarm, supervisory, trouble). */
const CLASS_TEXT: Record<SignalClass, ClassText> = {
  fire: { category: ['Fire'], event: 'Fire alarm', severity: 'Severe' },
  waterflow: { category: ['Fire'], event: 'Sprinkler waterflow alarm', severity: 'Severe' },
  gas: { category: ['Fire', 'Safety'], event: 'Combustible gas alarm', severity: 'Severe' },
  co: { category: ['Health', 'Safety'], event: 'Carbon monoxide alarm', severity: 'Severe' },
  intrusion: { category: ['Security'], event: 'Intrusion alarm', severity: 'Moderate' },
  supervisory: { category: ['Infra'], event: 'Fire protection supervisory signal', severity: 'Minor' },
  trouble: { category: ['Infra'], event: 'Fire alarm system trouble', severity: 'Minor' },
};

/**
 * CAP 1.2 §3.3.2: dateTime with an explicit offset, no fractional seconds, and
 * "-00:00" for UTC ("Z" MUST NOT be used).
 */
export function formatCapTime(ms: number, utcOffsetMinutes = -new Date(ms).getTimezoneOffset()): string {
  const local = new Date(Math.floor(ms / 1000) * 1000 + utcOffsetMinutes * 60_000);
  const iso = local.toISOString().slice(0, 19);
  if (utcOffsetMinutes === 0) return `${iso}-00:00`;
  const sign = utcOffsetMinutes > 0 ? '+' : '-';
  const abs = Math.abs(utcOffsetMinutes);
  return `${iso}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** CAP 1.2 §3.2.1: identifier and sender MUST NOT include spaces, commas or the restricted characters < and &. */
export function isCapToken(s: string): boolean {
  return /^[^\s,<&]+$/.test(s);
}

/** CAP 1.2 §3.2.1 references: space-separated "sender,identifier,sent" triples. */
export function formatReferences(refs: readonly CapReference[], utcOffsetMinutes?: number): string {
  return refs.map((r) => `${r.sender},${r.identifier},${formatCapTime(r.sent, utcOffsetMinutes)}`).join(' ');
}

/**
 * The CAP 1.2 alert of one dispatch (OASIS CAP 1.2, §3.2): scope Restricted to
 * the fire departments of the site's district, an info block with what the
 * firefighters need (what, where in the building, the site's address, hazards
 * and contacts) and an area with the site's position.
 */
export function buildCapAlert(a: CapAlertInput): string {
  for (const [what, v] of [['identifier', a.identifier], ['sender', a.sender]] as const) {
    if (!isCapToken(v)) throw new Error(`CAP ${what} "${v}" has a space, comma, "<" or "&" (CAP 1.2 §3.2.1)`);
  }
  const text = CLASS_TEXT[a.event.class];
  const ended = a.msgType === 'Cancel';
  const doc = create({ version: '1.0', encoding: 'UTF-8' }).ele(CAP_NAMESPACE, 'alert');
  doc.ele('identifier').txt(a.identifier);
  doc.ele('sender').txt(a.sender);
  doc.ele('sent').txt(formatCapTime(a.sent, a.utcOffsetMinutes));
  doc.ele('status').txt(a.status);
  doc.ele('msgType').txt(a.msgType);
  doc.ele('source').txt(`gateway ${a.event.gateway} of site ${a.event.site}`);
  // §3.2.1 scope Restricted needs <restriction>: who may see it.
  doc.ele('scope').txt('Restricted');
  doc.ele('restriction').txt(a.district ? `fire departments of district ${a.district}` : 'fire departments (site not registered: district unknown)');
  if (a.note) doc.ele('note').txt(a.note);
  if (a.references?.length) doc.ele('references').txt(formatReferences(a.references, a.utcOffsetMinutes));
  doc.ele('incidents').txt(a.incident);

  const info = doc.ele('info');
  info.ele('language').txt('en-US');
  for (const c of text.category) info.ele('category').txt(c);
  info.ele('event').txt(text.event);
  info.ele('responseType').txt(ended ? 'AllClear' : a.event.class === 'trouble' || a.event.class === 'supervisory' ? 'Assess' : 'Execute');
  info.ele('urgency').txt(ended ? 'Past' : 'Immediate');
  info.ele('severity').txt(text.severity);
  // An automatic detector has not been verified by a person: Likely, not Observed.
  info.ele('certainty').txt(ended ? 'Observed' : 'Likely');
  info.ele('eventCode').ele('valueName').txt('cosafe:class').up().ele('value').txt(a.event.class);
  info.ele('onset').txt(formatCapTime(a.event.time, a.utcOffsetMinutes));
  info.ele('senderName').txt('cosafe hub');
  const where = a.site ? `${a.site.name}, ${a.site.address}` : `unregistered site ${a.event.site}`;
  info.ele('headline').txt(`${ended ? 'Ended: ' : ''}${text.event} at ${where}`.slice(0, 160));
  info.ele('description').txt(describe(a));
  const contacts = a.site?.contacts.map((c) => [c.name, c.role, c.phone, c.email].filter(Boolean).join(', ')).join('; ');
  if (contacts) info.ele('contact').txt(contacts);
  const parameters: [string, string | undefined][] = [
    ['cosafe:alarmId', a.alarmId],
    ['cosafe:eventId', a.event.eventId],
    ['cosafe:site', a.event.site],
    ['cosafe:device', a.event.device],
    ['cosafe:condition', a.event.condition],
    ['cosafe:state', a.event.state],
    ['cosafe:location', a.event.location],
  ];
  for (const [name, value] of parameters) if (value !== undefined) info.ele('parameter').ele('valueName').txt(name).up().ele('value').txt(value);
  if (a.site) {
    const area = info.ele('area');
    area.ele('areaDesc').txt(`${a.site.name}, ${a.site.address}`);
    // §3.2.4 circle: "lat,lon radius" in WGS 84 degrees and kilometres; the building, 50 m.
    area.ele('circle').txt(`${a.site.location.lat},${a.site.location.lon} 0.05`);
  }
  return doc.end({ prettyPrint: true });
}

function describe(a: CapAlertInput): string {
  const e = a.event;
  const lines = [
    a.site ? `Site: ${a.site.name}, ${a.site.address}` : `Site: ${e.site} (NOT REGISTERED: no address or position known; call the hub operator)`,
    `Device: ${e.device}${e.location ? ` (${e.location})` : ''}, ${e.profile}`,
    `Condition: ${e.condition} ${e.state}${e.metric ? `, ${e.metric} = ${e.value ?? '?'}${e.unit ? ` ${e.unit}` : ''}` : ''}${e.text ? `, "${e.text}"` : ''}`,
  ];
  if (a.site?.occupancy) lines.push(`Occupancy: ${a.site.occupancy}`);
  if (a.site?.hazards.length) lines.push(`Hazards: ${a.site.hazards.join('; ')}`);
  if (a.site?.notes) lines.push(`Notes: ${a.site.notes}`);
  if (e.chattering) lines.push('The condition is chattering (3 or more activations within 60 s).');
  return lines.join('\n');
}
