import type { CredentialRole } from '../../core/vocabulary.js';

/** Who is asking, as the credential store knows them (the broker's identities, no second user database). */
export interface Principal {
  id: string;
  role: CredentialRole;
  /** A fire department's (or agency's) district. */
  district?: string;
}

export type Permission = 'alarms.read' | 'alarms.ack' | 'alarms.shelve' | 'sites.read' | 'agency.read';

/**
 * How far a role's permissions reach: everything; the sites and alarms of its
 * own district; or its district if its credential names one, else every
 * district (an agency of the city, or of one district).
 */
type Reach = 'all' | 'district' | 'district-if-any';

/**
 * The one table of who may do what over HTTP (and of who may acknowledge over
 * MQTT too), deny by default, mirroring the broker's ACL: a fire department sees
 * and acknowledges the alarms of its district and reads its sites' registry
 * details; an agency reads the summaries (counts, no site) of its district, or
 * of all districts; an admin may do everything. Roles not listed may do nothing here.
 * Issue 13 adds the owner role and browser sessions on top of this table.
 */
export const permissionTable: Readonly<Partial<Record<CredentialRole, { reach: Reach; may: readonly Permission[] }>>> = {
  'fire-department': { reach: 'district', may: ['alarms.read', 'alarms.ack', 'sites.read'] },
  agency: { reach: 'district-if-any', may: ['agency.read'] },
  admin: { reach: 'all', may: ['alarms.read', 'alarms.ack', 'alarms.shelve', 'sites.read', 'agency.read'] },
};

/**
 * Whether `who` may do `what` to something of `district`. An alarm of a site
 * the registry does not know (district null) went to every fire department, so
 * every fire department may see and acknowledge it.
 */
export function may(who: Principal, what: Permission, district: string | null): boolean {
  const entry = permissionTable[who.role];
  if (!entry || !entry.may.includes(what)) return false;
  if (entry.reach === 'all' || (entry.reach === 'district-if-any' && who.district === undefined)) return true;
  return district === null || (who.district !== undefined && who.district === district);
}

/** Whether `who` has `what` anywhere at all (for list endpoints, which then filter by district). */
export function mayAtAll(who: Principal, what: Permission): boolean {
  return permissionTable[who.role]?.may.includes(what) ?? false;
}
