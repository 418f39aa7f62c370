/**
 * The topic tree: the contract between gateways, devices and cloud-sync. Every
 * topic string of the project is built here; nothing else spells one out.
 *
 * The site id is a level of every device-side topic so that the broker ACL can
 * confine a building owner's credentials to their own site.
 */
export const TOPIC_ROOT = 'cosafe/v1';

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
} as const;

/** Wildcard subscriptions for consumers of every site. */
export const subscriptions = {
  allReadings: `${TOPIC_ROOT}/sites/+/gateways/+/readings`,
  allEvents: `${TOPIC_ROOT}/sites/+/gateways/+/events`,
  allStatus: `${TOPIC_ROOT}/sites/+/gateways/+/status`,
} as const;

export type ParsedTopic =
  | { kind: 'readings' | 'events' | 'status'; site: string; gateway: string }
  | { kind: 'deviceUplink'; site: string; device: string };

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
