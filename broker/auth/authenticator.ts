import type { ConnectionInfo } from '../listeners/connection-info.js';
import type { CredentialStore } from './credential-store.js';
import type { EphemeralIdentities } from './ephemeral-identities.js';
import { ANONYMOUS_RESIDENT, type Identity } from './identity.js';
import type { AuthMethod, Session } from './sessions.js';

export type AuthFailureReason =
  | 'anonymous-not-admitted'
  | 'unknown-identity'
  | 'wrong-secret'
  | 'revoked'
  | 'certificate-untrusted'
  | 'certificate-without-cn'
  | 'username-not-certificate';

export type AuthOutcome =
  | { ok: true; identity: Identity; method: AuthMethod; generation: number }
  /** 4: bad user name or password; 5: not authorized (MQTT 3.1.1 §3.2.2.3). */
  | { ok: false; returnCode: 4 | 5; reason: AuthFailureReason };

const fail = (returnCode: 4 | 5, reason: AuthFailureReason): AuthOutcome => ({ ok: false, returnCode, reason });

/**
 * Who is connecting: a verified client certificate (TLS), a username and secret
 * (a stored credential, or an internal identity of this process), or nobody
 * (an anonymous resident, where the listener admits residents). The client is
 * told only "bad user name or password" or "not authorized"; the log gets the
 * reason.
 */
export class Authenticator {
  constructor(private readonly d: { store?: CredentialStore; ephemeral: EphemeralIdentities }) {}

  async identify(info: ConnectionInfo, username: string | undefined, password: Buffer | undefined): Promise<AuthOutcome> {
    const { store, ephemeral } = this.d;
    if (info.certificate) {
      if (!info.certificate.verified) return fail(5, 'certificate-untrusted');
      const id = info.certificate.subjectCn;
      if (!id) return fail(5, 'certificate-without-cn');
      if (username && username !== id) return fail(5, 'username-not-certificate');
      const credential = store?.find(id);
      if (!credential) return fail(5, 'unknown-identity');
      if (credential.revokedAt !== null) return fail(5, 'revoked');
      return { ok: true, identity: credential.identity, method: 'certificate', generation: credential.generation };
    }
    if (!username) {
      return info.admits.has('resident') ? { ok: true, identity: ANONYMOUS_RESIDENT, method: 'anonymous', generation: 0 } : fail(5, 'anonymous-not-admitted');
    }
    const secret = password?.toString('utf8') ?? '';
    if (ephemeral.isEphemeral(username)) {
      const identity = ephemeral.verify(username, secret);
      return identity ? { ok: true, identity, method: 'internal', generation: 0 } : fail(4, ephemeral.find(username) ? 'wrong-secret' : 'unknown-identity');
    }
    const credential = store ? await store.verify(username, secret) : undefined;
    if (credential) return { ok: true, identity: credential.identity, method: 'secret', generation: credential.generation };
    const known = store?.find(username);
    return fail(4, !known ? 'unknown-identity' : known.revokedAt !== null ? 'revoked' : 'wrong-secret');
  }

  /** For a gateway: what its site's devices and bridges publish outside the contract (topics, `<prefix>/#`), which it may read. */
  deviceTopicsFor(identity: Identity): string[] {
    return identity.role === 'gateway' && this.d.store ? this.d.store.siteForeignFilters(identity.site) : [];
  }

  /** Whether a live session still stands after the store changed. */
  recheck(session: Session): 'ok' | 'revoked' | 'rotated' {
    if (session.method !== 'secret' && session.method !== 'certificate') return 'ok';
    const credential = this.d.store?.find(session.identity.id);
    if (!credential || credential.revokedAt !== null) return 'revoked';
    // A certificate does not depend on the secret; a secret session ends with its secret.
    if (session.method === 'secret' && credential.generation !== session.generation) return 'rotated';
    return 'ok';
  }
}
