/**
 * The topic tree: the contract between gateways, devices, cloud-sync, fire
 * departments, agencies and residents. Every topic string of the project is
 * built here; nothing else spells one out. The broker ACL (broker/auth/acl.ts)
 * grants its rights in terms of these builders.
 *
 * The site id is a level of every device-side topic so that the broker ACL can
 * confine a building owner's credentials to their own site; the district is a
 * level of every dispatch topic so that it can confine a fire department to its
 * district.
 */
export const TOPIC_ROOT = 'cosafe/v1';

/** Topics the broker publishes about itself [MQTT-4.7.2-1]: for admins only. */
export const SYS_ROOT = '$SYS';

/** Ids become topic levels, so they must not contain `/`, `+`, `#` or `$` [MQTT-4.7.1]. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const topics = {
  /** Raw payloads of an MQTT device, in the device's own format (decoded by its profile at the edge). */
  deviceUplink: (site: string, device: string) => `${TOPIC_ROOT}/sites/${site}/devices/${device}/up`,
  /** Reading batches of a gateway (QoS 1). */
  readings: (site: string, gateway: string) => `${TOPIC_ROOT}/sites/${site}/gateways/${gateway}/readings`,
  /** Alarm, supervisory and trouble events of a gateway (QoS 1). */
  events: (site: string, gateway: string) => `${TOPIC_ROOT}/sites/${site}/gateways/${gateway}/events`,
  /** Retained gateway status; the gateway's last will sets it offline. */
  status: (site: string, gateway: string) => `${TOPIC_ROOT}/sites/${site}/gateways/${gateway}/status`,
  /** A command to one gateway (from the hub's operators); only that gateway reads it. */
  gatewayCommand: (site: string, gateway: string, command: string) => `${TOPIC_ROOT}/sites/${site}/gateways/${gateway}/commands/${command}`,
  /** Alarms of one site, dispatched to the fire departments of the site's district. */
  dispatchAlarm: (district: string, site: string) => `${TOPIC_ROOT}/dispatch/${district}/alarms/${site}`,
  /** A fire department's acknowledgement of one alarm event (by its event id). */
  dispatchAck: (district: string, eventId: string) => `${TOPIC_ROOT}/dispatch/${district}/acks/${eventId}`,
  /** What the contract shares with government agencies, per district and feed (e.g. `events`, `summary`). */
  agencyFeed: (district: string, feed: string) => `${TOPIC_ROOT}/agency/${district}/${feed}`,
  /**
   * Alerts for residents of one H3 cell. Minimized: hazard type, coarse area,
   * instructions, time; never a business name, address, device id or raw reading.
   */
  publicAlerts: (h3cell: string) => `${TOPIC_ROOT}/public/${h3cell}/alerts`,
} as const;

/** Subscription filters, for consumers and for the ACL's grants. */
export const subscriptions = {
  allReadings: `${TOPIC_ROOT}/sites/+/gateways/+/readings`,
  allEvents: `${TOPIC_ROOT}/sites/+/gateways/+/events`,
  allStatus: `${TOPIC_ROOT}/sites/+/gateways/+/status`,
  /** The reading batches of every gateway of one site (a cloud-sync worker's share: cloud-sync/partitions/). */
  siteReadings: (site: string) => `${TOPIC_ROOT}/sites/${site}/gateways/+/readings`,
  /** Every device uplink of one site (what the site's gateway reads). */
  siteUplinks: (site: string) => `${TOPIC_ROOT}/sites/${site}/devices/+/up`,
  /** Every command to one gateway. */
  gatewayCommands: (site: string, gateway: string) => `${TOPIC_ROOT}/sites/${site}/gateways/${gateway}/commands/#`,
  /** Everything dispatched in one district: alarms and acknowledgements. */
  district: (district: string) => `${TOPIC_ROOT}/dispatch/${district}/#`,
  /** Every dispatched alarm, every district (for the service that dispatches). */
  allDispatchAlarms: `${TOPIC_ROOT}/dispatch/+/alarms/+`,
  /** Every fire-department acknowledgement, every district (for cloud-sync). */
  allAcks: `${TOPIC_ROOT}/dispatch/+/acks/+`,
  /** The agency feeds of one district. */
  agencyDistrict: (district: string) => `${TOPIC_ROOT}/agency/${district}/#`,
  /** Every agency feed. */
  allAgency: `${TOPIC_ROOT}/agency/#`,
  /** Everything for residents. */
  allPublic: `${TOPIC_ROOT}/public/#`,
  /** The broker's own topics. */
  sys: `${SYS_ROOT}/#`,
} as const;

export type ParsedTopic =
  | { kind: 'readings' | 'events' | 'status'; site: string; gateway: string }
  | { kind: 'deviceUplink'; site: string; device: string };

/** The command a gateway gets when one of its alarms is acknowledged. */
export const ALARM_ACK_COMMAND = 'alarm-ack';

const DISPATCH_ROOT = `${TOPIC_ROOT}/dispatch/`;

/** Reads `dispatch/<district>/acks/<eventId>` back into its parts; `undefined` for anything else. */
export function parseAckTopic(topic: string): { district: string; eventId: string } | undefined {
  // The broker asks this of every message: most are not under dispatch/, and need no split.
  if (!topic.startsWith(DISPATCH_ROOT)) return undefined;
  const parts = topic.split('/');
  if (parts.length !== 6 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[2] !== 'dispatch' || parts[4] !== 'acks') return undefined;
  return { district: parts[3]!, eventId: parts[5]! };
}

/** Reads a contract topic back into its parts; `undefined` for anything else. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 7 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[2] !== 'sites') return undefined;
  const [, , , site, branch, id, leaf] = parts as [string, string, string, string, string, string, string];
  if (branch === 'gateways' && (leaf === 'readings' || leaf === 'events' || leaf === 'status')) {
    return { kind: leaf, site, gateway: id };
  }
  if (branch === 'devices' && leaf === 'up') return { kind: 'deviceUplink', site, device: id };
  return undefined;
}
