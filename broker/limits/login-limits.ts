import type { Sessions } from '../auth/sessions.js';
import type { AddressGuard } from './address-guard.js';

/**
 * Why a login is refused before its secret is hashed: `identity`, that
 * identity failed too often from this address; `address`, the address failed
 * logins for too many identities (spraying).
 */
export type LoginVerdict = { ok: true } | { ok: false; why: 'identity' | 'address'; failures: number };

/**
 * The login limits that must hold for a whole cluster, not per broker:
 * failed logins per address and identity (broker.limits.authFailuresPerMinute),
 * identities failed per address (authFailedIdentitiesPerMinute) and
 * connections per identity (maxConnectionsPerIdentity). One broker alone
 * (localLoginLimits) counts in its own memory, as it always did; the brokers of
 * a cluster count in their shared Redis (backends/redis-limits.ts).
 */
export interface LoginLimits {
  /** At CONNECT, before the secret is hashed. A plain value when it is known at once (one broker alone). */
  check(address: string, identity: string): LoginVerdict | Promise<LoginVerdict>;
  /** A login from `address` for `identity` failed (bad user name or password, not authorized). */
  failed(address: string, identity: string): void;
  /**
   * Takes one of the identity's `max` connections for `clientId` (a client id
   * already connected is taken over [MQTT-3.1.4-2], not one more); false when
   * all are taken. Every true is paired with one `release`.
   */
  acquire(identityId: string, clientId: string, max: number): boolean | Promise<boolean>;
  release(identityId: string, clientId: string): void;
  close(): Promise<void>;
}

/**
 * One broker on its own: the counts are the address guard's and the live
 * sessions of this process (the behaviour from before clusters, unchanged).
 */
export function localLoginLimits(d: { addressGuard: AddressGuard; sessions: Sessions }): LoginLimits {
  return {
    check: (address, identity) =>
      d.addressGuard.admitIdentity(address, identity) ? { ok: true } : { ok: false, why: 'identity', failures: d.addressGuard.failuresOf(address, identity) },
    failed: (address, identity) => d.addressGuard.authFailed(address, identity),
    // A plain value: the caller adds the session in the same synchronous step, so two logins cannot both take the last one.
    acquire: (identityId, clientId, max) => d.sessions.countFor(identityId, clientId) < max,
    release: () => {},
    close: async () => {},
  };
}
