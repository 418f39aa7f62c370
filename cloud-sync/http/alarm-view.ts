import { occurrencesOf, type Occurrence } from '../alarms/alarm-history.js';
import type { AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import type { SiteRegistry } from '../registry/site-registry.js';

/**
 * An alarm as the API and the pages show it: the record, the device and where
 * it is, the site's registry entry (name, address, position, hazards,
 * contacts), and the current occurrence with its timeline (raised, delivered,
 * escalated, acknowledged, cleared), read from the journal.
 */
export function alarmView(a: AlarmRecord, d: { lifecycle: AlarmLifecycle; sites: SiteRegistry }) {
  const { lastEvent, ...rest } = a;
  const occurrence: Occurrence | undefined = occurrencesOf(d.lifecycle.journal(a.id)).at(-1);
  return {
    ...rest,
    device: lastEvent.device,
    location: lastEvent.location ?? null,
    lastEvent,
    siteInfo: d.sites.lookup(a.site) ?? null,
    occurrence: occurrence ?? null,
  };
}

export type AlarmView = ReturnType<typeof alarmView>;
