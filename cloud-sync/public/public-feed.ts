import { create } from 'xmlbuilder2';
import type { PublicAlert } from '../../broker/contract/index.js';
import { CAP_CONTENT_TYPE } from '../alarms/cap.js';

export const ATOM_NAMESPACE = 'http://www.w3.org/2005/Atom';
export const ATOM_CONTENT_TYPE = 'application/atom+xml';

export interface AtomFeedInput {
  /** Absolute URL of the feed (its id and rel="self"). */
  selfUrl: string;
  /** Absolute URL prefix of the public API: `<base>/public/v1`. */
  apiBase: string;
  title: string;
  alerts: readonly PublicAlert[];
  /** When the feed last changed (ms); the newest alert's update, or the hub's start. */
  updated: number;
}

/** RFC 3339 date-time for Atom (RFC 4287 §3.3), in UTC. */
const atomTime = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/**
 * An Atom feed (RFC 4287) of CAP 1.2 alerts, as public-alert aggregators
 * poll them: one entry per public alert, active or recently ended, each
 * linking its latest CAP message (Alert, Update or Cancel) as
 * application/cap+xml. Entry ids stay the same for the life of an alert, so
 * a poller sees an update as an update.
 */
export function buildAtomFeed(f: AtomFeedInput): string {
  const feed = create({ version: '1.0', encoding: 'UTF-8' }).ele(ATOM_NAMESPACE, 'feed');
  feed.ele('id').txt(f.selfUrl);
  feed.ele('title').txt(f.title);
  feed.ele('updated').txt(atomTime(f.updated));
  feed.ele('author').ele('name').txt('cosafe hub');
  feed.ele('link', { rel: 'self', type: ATOM_CONTENT_TYPE, href: f.selfUrl });
  for (const a of f.alerts) {
    const text = a.texts[0]!;
    const entry = feed.ele('entry');
    entry.ele('id').txt(`${f.apiBase}/alerts/${a.id}`);
    entry.ele('title').txt(text.headline);
    entry.ele('updated').txt(atomTime(a.updated));
    entry.ele('published').txt(atomTime(a.sent));
    entry.ele('category', { term: a.hazard });
    entry.ele('summary').txt(text.instruction);
    entry.ele('link', { rel: 'alternate', type: CAP_CONTENT_TYPE, href: `${f.apiBase}/alerts/${a.id}.cap.xml` });
  }
  return feed.end({ prettyPrint: true });
}
