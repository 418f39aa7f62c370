import { SYS_ROOT, subscriptions, topics } from '../contract/topics.js';
import type { Identity } from './identity.js';
import { filterWithin, isValidTopicFilter, isValidTopicName, topicMatches } from './topic-filter.js';

/**
 * The broker's access policy, deny by default: a role may publish to and read
 * only the topics its grants name, confined to its own site, gateway, device or
 * district. Pure logic, so that it can be read in one sitting and tested as a
 * table (tests/unit/broker/acl.test.ts).
 */
export interface Grants {
  /** Topic filters the identity may publish to. */
  readonly publish: readonly string[];
  /** Topic filters the identity may subscribe within. */
  readonly subscribe: readonly string[];
}

const ANY = '+';

// Identities are immutable for the life of a session, so each one's grants are worked out once.
const cache = new WeakMap<Identity, Grants>();

export function grantsOf(identity: Identity): Grants {
  let grants = cache.get(identity);
  if (!grants) {
    grants = Object.freeze(computeGrants(identity));
    cache.set(identity, grants);
  }
  return grants;
}

function computeGrants(identity: Identity): Grants {
  switch (identity.role) {
    case 'gateway': {
      const { site, gateway } = identity;
      return {
        // Only its own gateway's topics, under its own site.
        publish: [topics.readings(site, gateway), topics.events(site, gateway), topics.status(site, gateway)],
        // Its own commands, and the uplinks of its site's MQTT devices, which its MQTT adapter decodes.
        subscribe: [subscriptions.gatewayCommands(site, gateway), subscriptions.siteUplinks(site)],
      };
    }
    case 'device':
      return { publish: [topics.deviceUplink(identity.site, identity.device), ...(identity.topic ? [identity.topic] : [])], subscribe: [] };
    case 'bridge':
      // Its devices, their availability and its own bridge/... topics, all under its prefix; zigbee2mqtt
      // also subscribes to <prefix>/# (for its requests and set commands), which nobody else may publish.
      return { publish: [`${identity.prefix}/#`], subscribe: [`${identity.prefix}/#`] };
    case 'service':
      // cloud-sync: reads what every gateway sends, fans out to fire departments, agencies and residents,
      // and tells gateways when their alarms are acknowledged.
      return {
        publish: [topics.dispatchAlarm(ANY, ANY), topics.agencyFeed(ANY, ANY), topics.publicAlerts(ANY), topics.gatewayCommand(ANY, ANY, ANY)],
        subscribe: [subscriptions.allReadings, subscriptions.allEvents, subscriptions.allStatus, subscriptions.allAcks],
      };
    case 'fire-department':
      return { publish: [topics.dispatchAck(identity.district, ANY)], subscribe: [subscriptions.district(identity.district)] };
    case 'agency':
      return { publish: [], subscribe: [identity.district ? subscriptions.agencyDistrict(identity.district) : subscriptions.allAgency] };
    case 'resident':
      return { publish: [], subscribe: [subscriptions.allPublic] };
    case 'owner':
    case 'monitor':
      // People and programs of the HTTP API, which confines an owner to their sites and shows what they need.
      // A grant here would be a second door to keep in step with that one, for nothing an owner needs.
      return { publish: [], subscribe: [] };
    case 'admin':
      // `#` never matches `$SYS/...` [MQTT-4.7.2-1]: the broker's own topics are granted explicitly, and only to read.
      return { publish: ['#'], subscribe: ['#', subscriptions.sys] };
  }
}

/** Whether `identity` may publish a message on `topic`. Nobody publishes on `$SYS`: those are the broker's own. */
export function mayPublish(identity: Identity, topic: string): boolean {
  if (!isValidTopicName(topic) || topic.startsWith('$')) return false;
  return grantsOf(identity).publish.some((g) => topicMatches(g, topic));
}

/**
 * Whether `identity` may subscribe to `filter`: only if the filter cannot reach
 * beyond one of its grants. `siteForeign`: for a gateway, what its own site's
 * devices and bridges publish outside the contract (a device's own topic, a
 * bridge's `<prefix>/#`), which it may read too.
 */
export function maySubscribe(identity: Identity, filter: string, siteForeign: readonly string[] = []): boolean {
  if (!isValidTopicFilter(filter)) return false;
  const grants = identity.role === 'gateway' ? [...grantsOf(identity).subscribe, ...siteForeign] : grantsOf(identity).subscribe;
  return grants.some((g) => filterWithin(filter, g));
}

/** Whether a message on `topic` may be delivered to `identity` (checked again on every delivery, defence in depth). */
export function mayReceive(identity: Identity, topic: string, siteForeign: readonly string[] = []): boolean {
  if (topic.startsWith(`${SYS_ROOT}/`) && identity.role !== 'admin') return false;
  if (identity.role === 'gateway' && siteForeign.some((g) => topicMatches(g, topic))) return true;
  return grantsOf(identity).subscribe.some((g) => topicMatches(g, topic));
}
