import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import type { Principal } from './permissions.js';
import type { Session, SessionStore } from './session-store.js';

/**
 * What the HTTP API needs of the credential store (the broker's, injected by
 * the composition root: cloud-sync does not import the broker).
 */
export interface CredentialVerifier {
  /** The active credential with this secret, with its generation. */
  verify(id: string, secret: string): Promise<{ principal: Principal; generation: number } | undefined>;
  /** The credential's state now (one row read, no hashing): revoked, or rotated to a new generation. */
  current(id: string): { generation: number; revoked: boolean } | undefined;
  /** The active credential of `id`, without its secret: for a client certificate the TLS handshake verified. */
  identity(id: string): { principal: Principal; generation: number } | undefined;
}

/**
 * Failed logins per address and identity, as the broker counts them (its
 * AddressGuard, injected by the composition root): a NAT's other users keep
 * logging in while one identity is refused, and an address that tries many
 * identities is refused as a whole.
 */
export interface LoginGuard {
  /** True once `address` failed logins for too many identities within the window. */
  refusesAddress(address: string): boolean;
  admitIdentity(address: string, identity: string): boolean;
  authFailed(address: string, identity: string): void;
}

export type AuthFailure = 'missing' | 'malformed' | 'unknown-or-wrong' | 'revoked-or-rotated' | 'rate-limited' | 'session-expired' | 'certificate-unknown';

export type AuthVia = 'basic' | 'bearer' | 'session' | 'certificate';

export type AuthOutcome =
  | { ok: true; principal: Principal; via: AuthVia; session?: Session & { token: string } }
  | { ok: false; reason: AuthFailure; retryAfterSeconds?: number };

/** What a request presents: the Authorization header, the session cookie, a verified client certificate's CN. */
export interface Presented {
  authorization?: string | undefined;
  sessionToken?: string | undefined;
  certificateCn?: string | undefined;
  address: string;
}

/** The guard's window is a minute (the broker's): a refused login is told to come back after it. */
const RETRY_AFTER_S = 60;

/**
 * Who an HTTP request is: HTTP Basic (`identity id:secret`, RFC 7617) or a
 * bearer token of the same secret (`Bearer <id>:<secret>`, RFC 6750) for
 * programs; a session cookie for the pages' browsers (made by `login`); a
 * client certificate the TLS listener verified, whose CN names the identity.
 * A secret is hashed once per secret, not per request, by the credential
 * store (SHA-256 for what cosafe issued, scrypt for a store written before): it remembers the secrets it verified for the credential's current
 * generation, in one memory with the broker's logins
 * (broker/auth/verified-secrets.ts), so a revoked or rotated credential stops
 * working at once; its sessions end too. Failed secrets are counted per address and identity and
 * refused past the limit before any hashing.
 */
export class HttpAuthenticator {
  private readonly log: ThrottledLog;

  constructor(private readonly d: { verifier: CredentialVerifier; guard: LoginGuard; sessions?: SessionStore; clock: Clock; metrics: Metrics; logger: Logger }) {
    this.log = new ThrottledLog(d.logger, d.clock);
  }

  /** Authorization first (a program's), then the session cookie, then the client certificate. */
  async authenticate(p: Presented): Promise<AuthOutcome> {
    if (p.authorization) return this.fromAuthorization(p.authorization, p.address);
    if (p.sessionToken) return this.fromSession(p.sessionToken);
    if (p.certificateCn) return this.fromCertificate(p.certificateCn);
    return this.fail('missing');
  }

  /** A person's login on the pages: checks the secret (rate-limited like any other) and opens a session. */
  async login(id: string, secret: string, meta: { address: string; agent: string }): Promise<AuthOutcome> {
    const r = await this.checkSecret(id, secret, meta.address);
    if (!r.ok) return r;
    if (!this.d.sessions) return this.fail('unknown-or-wrong');
    const { token, session } = this.d.sessions.create(r.principal, r.generation, meta);
    this.d.metrics.inc('cosafe_http_logins_total', { role: r.principal.role });
    this.d.logger.info({ identity: id, role: r.principal.role, address: meta.address }, 'signed in on the pages');
    return { ok: true, principal: r.principal, via: 'session', session: { ...session, token } };
  }

  /**
   * Whether what authenticated a long-lived request (a live stream) still
   * holds: the session is alive (and counts as used), the credential is not
   * revoked or rotated.
   */
  stillValid(p: Principal, via: AuthVia, sessionToken?: string): boolean {
    if (via === 'session') {
      const session = sessionToken === undefined ? undefined : this.d.sessions?.get(sessionToken);
      const state = session && this.d.verifier.current(session.principal.id);
      return !!state && !state.revoked && state.generation === session!.generation;
    }
    const state = this.d.verifier.current(p.id);
    return !!state && !state.revoked;
  }

  logout(token: string): void {
    this.d.sessions?.delete(token);
  }

  private async fromAuthorization(header: string, address: string): Promise<AuthOutcome> {
    const creds = parseAuthorization(header);
    if (!creds) return this.fail('malformed');
    const r = await this.checkSecret(creds.id, creds.secret, address);
    return r.ok ? { ok: true, principal: r.principal, via: creds.scheme } : r;
  }

  private async checkSecret(id: string, secret: string, address: string): Promise<({ ok: true; principal: Principal; generation: number }) | Extract<AuthOutcome, { ok: false }>> {
    // Refused before the secret is hashed: a guessing attack costs us nothing past the limit.
    const limit = this.d.guard.refusesAddress(address) ? 'auth-failed-identities' : !this.d.guard.admitIdentity(address, id) ? 'auth-failures' : undefined;
    if (limit) {
      this.d.metrics.inc('cosafe_http_limit_hits_total', { limit });
      this.log.warn(
        `limit:${limit}:${address}:${limit === 'auth-failures' ? id : ''}`,
        { code: 'COSAFE_ERR_HTTP_LOGIN_LIMIT', limit, address, identity: id, why: limit === 'auth-failures' ? 'too many wrong secrets for this identity from this address within a minute' : 'failed logins for too many identities from this address within a minute' },
        'HTTP login refused: too many failed logins',
      );
      return { ...this.fail('rate-limited'), retryAfterSeconds: RETRY_AFTER_S };
    }
    const verified = await this.d.verifier.verify(id, secret);
    if (!verified) {
      this.d.guard.authFailed(address, id);
      this.log.warn(`failed:${address}:${id}`, { code: 'COSAFE_ERR_HTTP_UNAUTHENTICATED', address, identity: id }, 'HTTP login failed: unknown identity or wrong secret');
      return this.fail('unknown-or-wrong');
    }
    return { ok: true, ...verified };
  }

  private fromSession(token: string): AuthOutcome {
    const session = this.d.sessions?.get(token);
    if (!session) return this.fail('session-expired');
    const state = this.d.verifier.current(session.principal.id);
    if (!state || state.revoked || state.generation !== session.generation) {
      // The credential was revoked or rotated: every session opened with it ends, as the broker ends its MQTT sessions.
      this.d.sessions!.deleteIdentity(session.principal.id);
      return this.fail('revoked-or-rotated');
    }
    return { ok: true, principal: session.principal, via: 'session', session: { ...session, token } };
  }

  private fromCertificate(cn: string): AuthOutcome {
    const found = this.d.verifier.identity(cn);
    return found ? { ok: true, principal: found.principal, via: 'certificate' } : this.fail('certificate-unknown');
  }

  private fail(reason: AuthFailure): Extract<AuthOutcome, { ok: false }> {
    this.d.metrics.inc('cosafe_http_auth_failures_total', { reason });
    return { ok: false, reason };
  }
}

export function parseAuthorization(header: string): { id: string; secret: string; scheme: 'basic' | 'bearer' } | undefined {
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (!scheme || !value) return undefined;
  let pair: string;
  let kind: 'basic' | 'bearer';
  if (/^basic$/i.test(scheme)) {
    pair = Buffer.from(value, 'base64').toString('utf8');
    kind = 'basic';
  } else if (/^bearer$/i.test(scheme)) {
    pair = value;
    kind = 'bearer';
  } else return undefined;
  const i = pair.indexOf(':');
  if (i <= 0 || i === pair.length - 1) return undefined;
  return { id: pair.slice(0, i), secret: pair.slice(i + 1), scheme: kind };
}
