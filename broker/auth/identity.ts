import { z } from 'zod';
import { BridgePrefix, BrokerRole, CredentialRole, underPrefix } from '../../core/vocabulary.js';
import { ID_PATTERN, TOPIC_ROOT } from '../contract/topics.js';
import { isValidTopicName } from './topic-filter.js';

export { BrokerRole, CredentialRole };

/**
 * Who a connected client is: its role and the scope that role is confined to.
 * Declared once; the credential store, the ACL and the CLI use this schema.
 *
 * Where the district lives: a fire department's credential carries the district
 * it serves, and a gateway's credential carries the district of its site. Both
 * are set by the hub operator when issuing the credential, never by the building
 * owner, so a site cannot move itself to another fire department's district.
 */
const Level = z.string().regex(ID_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-" (it becomes an MQTT topic level)');

/** The username of a stored credential. Internal identities of the hub's own process start with "@" and so can never collide with one. */
export const IdentityId = z.string().regex(ID_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-"');

const AnyId = z.string().min(1).max(128);

/** Sites one owner credential may carry: a property manager's portfolio, not the whole registry (that is an admin). */
export const MAX_OWNER_SITES = 200;

/**
 * A device that already publishes on a topic of its own (a zigbee2mqtt bridge,
 * a vendor's firmware): that one exact topic, outside the contract tree. Its
 * site's gateway may then read it too.
 */
export const ForeignTopic = z
  .string()
  .max(512)
  .refine(isValidTopicName, 'must be a topic name, without "+" or "#"')
  .refine((t) => !t.startsWith('$') && !t.startsWith(`${TOPIC_ROOT}/`) && t !== TOPIC_ROOT, `must be outside "${TOPIC_ROOT}/" and "$": inside the contract, the device's uplink topic is the one`);

export { BridgePrefix, underPrefix };

export const Identity = z.discriminatedUnion('role', [
  z.object({ role: z.literal('gateway'), id: AnyId, site: Level, gateway: Level, district: Level.optional() }).strict(),
  z.object({ role: z.literal('device'), id: AnyId, site: Level, device: Level, topic: ForeignTopic.optional() }).strict(),
  /** One client publishing for many devices of one site under one prefix (zigbee2mqtt, a vendor bridge). */
  z.object({ role: z.literal('bridge'), id: AnyId, site: Level, prefix: BridgePrefix }).strict(),
  z.object({ role: z.literal('service'), id: AnyId }).strict(),
  z.object({ role: z.literal('fire-department'), id: AnyId, district: Level }).strict(),
  z.object({ role: z.literal('agency'), id: AnyId, district: Level.optional() }).strict(),
  /** A person who owns one or more sites: their devices, readings and alarms over HTTP; nothing over MQTT. */
  z.object({ role: z.literal('owner'), id: AnyId, sites: z.array(Level).min(1).max(MAX_OWNER_SITES).refine((s) => new Set(s).size === s.length, 'must not name a site twice') }).strict(),
  /** A metrics scraper (Prometheus): /metrics and /health's details over HTTP; nothing over MQTT. */
  z.object({ role: z.literal('monitor'), id: AnyId }).strict(),
  z.object({ role: z.literal('admin'), id: AnyId }).strict(),
  z.object({ role: z.literal('resident'), id: z.literal('anonymous') }).strict(),
]);
export type Identity = z.infer<typeof Identity>;

/** The anonymous public, as admitted on the WebSocket listener. */
export const ANONYMOUS_RESIDENT: Identity = Object.freeze({ role: 'resident', id: 'anonymous' });

/** What each role must (and may) carry, for errors and --help (an owner's --site may be given once per site). */
export const roleScope: Readonly<Record<CredentialRole, { required: readonly string[]; optional: readonly string[] }>> = {
  gateway: { required: ['site', 'gateway'], optional: ['district'] },
  device: { required: ['site', 'device'], optional: ['topic'] },
  bridge: { required: ['site', 'prefix'], optional: [] },
  service: { required: [], optional: [] },
  'fire-department': { required: ['district'], optional: [] },
  agency: { required: [], optional: ['district'] },
  owner: { required: ['site'], optional: [] },
  monitor: { required: [], optional: [] },
  admin: { required: [], optional: [] },
};

/** A short description for logs and tables: `gateway bakery-12/gw-1`. */
export function describeIdentity(i: Identity): string {
  switch (i.role) {
    case 'gateway':
      return `gateway ${i.site}/${i.gateway}`;
    case 'device':
      return `device ${i.site}/${i.device}`;
    case 'bridge':
      return `bridge ${i.site} (${i.prefix}/#)`;
    case 'fire-department':
      return `fire department of district ${i.district}`;
    case 'agency':
      return i.district ? `agency of district ${i.district}` : 'agency (all districts)';
    case 'owner':
      return `owner of ${i.sites.length === 1 ? 'site' : 'sites'} ${i.sites.join(', ')}`;
    default:
      return i.role;
  }
}
