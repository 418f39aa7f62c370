import type { CredentialRole } from '../../core/vocabulary.js';

/** Who is asking, as the credential store knows them (the broker's identities, no second user database). */
export interface Principal {
  id: string;
  role: CredentialRole;
  /** A fire department's (or agency's) district. */
  district?: string;
  /** An owner's sites. */
  sites?: readonly string[];
}

export type Permission =
  | 'alarms.read'
  | 'alarms.ack'
  | 'alarms.shelve'
  | 'sites.read'
  | 'readings.read'
  | 'devices.read'
  | 'gateways.read'
  | 'health.read'
  | 'metrics.read'
  | 'agency.read';

/**
 * How far a role's permissions reach: everything; the sites and alarms of its
 * own district; its district if its credential names one, else every district
 * (an agency of the city, or of one district); its own sites (an owner's).
 */
type Reach = 'all' | 'district' | 'district-if-any' | 'sites';

/** What a permission is asked for: a district (null: a site the registry does not know), or one site of a district. */
export type Target = string | null | { site: string; district: string | null };

/**
 * The one table of who may do what over HTTP (and of who may acknowledge over
 * MQTT too), deny by default, mirroring the broker's ACL: a fire department sees
 * and acknowledges the alarms of its district and reads its sites' registry
 * details; an agency reads the summaries (counts, no site) of its district, or
 * of all districts; an owner sees their own sites' devices, readings, gateways
 * and alarms (with who acknowledged them) but acknowledges nothing, which is the
 * fire department's to do; a monitor (Prometheus) reads /metrics and the
 * details of /health; an admin may do everything. Roles not listed (gateway,
 * device, bridge, service) may do nothing here: machines talk to the broker.
 */
export const permissionTable: Readonly<Partial<Record<CredentialRole, { reach: Reach; may: readonly Permission[] }>>> = {
  'fire-department': { reach: 'district', may: ['alarms.read', 'alarms.ack', 'sites.read'] },
  agency: { reach: 'district-if-any', may: ['agency.read'] },
  owner: { reach: 'sites', may: ['alarms.read', 'sites.read', 'readings.read', 'devices.read', 'gateways.read'] },
  monitor: { reach: 'all', may: ['health.read', 'metrics.read'] },
  admin: { reach: 'all', may: ['alarms.read', 'alarms.ack', 'alarms.shelve', 'sites.read', 'readings.read', 'devices.read', 'gateways.read', 'health.read', 'metrics.read', 'agency.read'] },
};

/**
 * Whether `who` may do `what` to something of `where`. An alarm of a site
 * the registry does not know (district null) went to every fire department, so
 * every fire department may see and acknowledge it. An owner's reach is their
 * sites, so a target that names only a district is never theirs.
 */
export function may(who: Principal, what: Permission, where: Target): boolean {
  const entry = permissionTable[who.role];
  if (!entry || !entry.may.includes(what)) return false;
  if (entry.reach === 'all' || (entry.reach === 'district-if-any' && who.district === undefined)) return true;
  const target = typeof where === 'object' && where !== null ? where : { district: where };
  if (entry.reach === 'sites') return 'site' in target && (who.sites ?? []).includes(target.site);
  return target.district === null || (who.district !== undefined && who.district === target.district);
}

/** Whether `who` has `what` anywhere at all (for list endpoints, which then filter by district or site). */
export function mayAtAll(who: Principal, what: Permission): boolean {
  return permissionTable[who.role]?.may.includes(what) ?? false;
}

/** The sites `who` is confined to, or undefined when its reach is not a list of sites (everything, or a district). */
export function sitesOf(who: Principal): readonly string[] | undefined {
  return permissionTable[who.role]?.reach === 'sites' ? (who.sites ?? []) : undefined;
}
