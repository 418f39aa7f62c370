import { create } from 'xmlbuilder2';
import type { CapMsgType, PublicAlert, PublicHazard } from '../../broker/contract/index.js';
import { CAP_NAMESPACE, formatCapTime, formatReferences } from '../alarms/cap.js';
import { areaPolygons } from './public-area.js';

/** CAP 1.2 §3.2.2 category per public hazard. */
const CATEGORY: Readonly<Record<PublicHazard, string[]>> = { fire: ['Fire'], gas: ['Fire', 'Safety'], co: ['Health', 'Safety'] };

/** CAP identifier of the n-th message of a public alert: the alert id, then `<id>.<n>`. */
export function publicCapIdentifier(alertId: string, n: number): string {
  return n === 1 ? alertId : `${alertId}.${n}`;
}

export interface PublicCapInput {
  alert: PublicAlert;
  /** 1 for the Alert, counting up for Updates and the Cancel. */
  n: number;
  msgType: CapMsgType;
  sender: string;
  /** Where residents read more (the residents' page), absolute; optional. */
  web?: string;
  utcOffsetMinutes?: number;
}

/**
 * The CAP 1.2 message of a public alert (OASIS CAP 1.2 §3.2), scope Public,
 * as public-alert aggregators take it: one <info> per language with the
 * hazard, what to do and the certainty (Observed once a fire department
 * confirmed it), and an <area> with the outline of its H3 cells as polygons
 * and the cells as geocodes. Built from the public alert alone, so nothing
 * private can be in it.
 */
export function buildPublicCap(c: PublicCapInput): string {
  const { alert } = c;
  const ended = c.msgType === 'Cancel';
  const doc = create({ version: '1.0', encoding: 'UTF-8' }).ele(CAP_NAMESPACE, 'alert');
  doc.ele('identifier').txt(publicCapIdentifier(alert.id, c.n));
  doc.ele('sender').txt(c.sender);
  doc.ele('sent').txt(formatCapTime(ended && alert.ended ? alert.ended : alert.updated, c.utcOffsetMinutes));
  doc.ele('status').txt(alert.status);
  doc.ele('msgType').txt(c.msgType);
  doc.ele('scope').txt('Public');
  if (c.msgType !== 'Alert') doc.ele('references').txt(formatReferences([{ sender: c.sender, identifier: alert.id, sent: alert.sent }], c.utcOffsetMinutes));
  doc.ele('incidents').txt(alert.id);
  for (const text of alert.texts) {
    const info = doc.ele('info');
    info.ele('language').txt(text.lang);
    for (const category of CATEGORY[alert.hazard]) info.ele('category').txt(category);
    info.ele('event').txt(text.event);
    info.ele('responseType').txt(ended ? 'AllClear' : 'Avoid');
    info.ele('urgency').txt(ended ? 'Past' : 'Immediate');
    info.ele('severity').txt(alert.severity);
    // A detector alone: Likely; a fire department on the scene confirmed it: Observed.
    info.ele('certainty').txt(ended || alert.confirmed ? 'Observed' : 'Likely');
    info.ele('eventCode').ele('valueName').txt('cosafe:hazard').up().ele('value').txt(alert.hazard);
    info.ele('onset').txt(formatCapTime(alert.sent, c.utcOffsetMinutes));
    info.ele('senderName').txt(`cosafe hub, district ${alert.district}`);
    info.ele('headline').txt(text.headline);
    info.ele('instruction').txt(text.instruction);
    if (c.web) info.ele('web').txt(c.web);
    const area = info.ele('area');
    area.ele('areaDesc').txt(`Neighbourhood in district ${alert.district} (H3 cells of resolution ${alert.area.resolution})`);
    for (const polygon of areaPolygons(alert.area.cells)) area.ele('polygon').txt(polygon);
    for (const cell of alert.area.cells) area.ele('geocode').ele('valueName').txt(`H3-r${alert.area.resolution}`).up().ele('value').txt(cell);
  }
  return doc.end({ prettyPrint: true });
}
