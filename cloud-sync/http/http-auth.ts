import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Metrics } from '../../core/metrics.js';
import type { Principal } from './permissions.js';

/**
 * What the HTTP API needs of the credential store (the broker's, injected by
 * the composition root: cloud-sync does not import the broker).
 */
export interface CredentialVerifier {
  /** The active credential with this secret (scrypt: slow on purpose), with its generation. */
  verify(id: string, secret: string): Promise<{ principal: Principal; generation: number } | undefined>;
  /** The credential's state now (one row read, no scrypt): revoked, or rotated to a new generation. */
  current(id: string): { generation: number; revoked: boolean } | undefined;
}

export type AuthFailure = 'missing' | 'malformed' | 'unknown-or-wrong' | 'revoked-or-rotated';

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; reason: AuthFailure };

/** How long a verified secret is remembered; a revocation or rotation ends it at once regardless. */
const CACHE_MS = 60_000;
const CACHE_MAX = 1000;

/**
 * Who an HTTP request is, from HTTP Basic (`identity id:secret`, RFC 7617) or
 * a bearer token of the same secret (`Bearer <id>:<secret>`, RFC 6750). A
 * verified secret is cached briefly, keyed by a hash of it, so the scrypt cost
 * is paid once, not per request; every request still reads the credential's
 * state, so a revoked or rotated credential stops working at once.
 */
export class HttpAuthenticator {
  private readonly cache = new Map<string, { principal: Principal; generation: number; until: number }>();

  constructor(private readonly d: { verifier: CredentialVerifier; clock: Clock; metrics: Metrics }) {}

  async authenticate(authorization: string | undefined): Promise<AuthOutcome> {
    const fail = (reason: AuthFailure): AuthOutcome => {
      this.d.metrics.inc('cosafe_http_auth_failures_total', { reason });
      return { ok: false, reason };
    };
    if (!authorization) return fail('missing');
    const creds = parseAuthorization(authorization);
    if (!creds) return fail('malformed');
    const key = createHash('sha256').update(`${creds.id}\u0000${creds.secret}`).digest('base64');
    const now = this.d.clock.now();
    const cached = this.cache.get(key);
    if (cached && cached.until > now) {
      const state = this.d.verifier.current(creds.id);
      if (state && !state.revoked && state.generation === cached.generation) return { ok: true, principal: cached.principal };
      this.cache.delete(key);
      return fail('revoked-or-rotated');
    }
    const verified = await this.d.verifier.verify(creds.id, creds.secret);
    if (!verified) return fail('unknown-or-wrong');
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { ...verified, until: now + CACHE_MS });
    return { ok: true, principal: verified.principal };
  }
}

export function parseAuthorization(header: string): { id: string; secret: string } | undefined {
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (!scheme || !value) return undefined;
  let pair: string;
  if (/^basic$/i.test(scheme)) pair = Buffer.from(value, 'base64').toString('utf8');
  else if (/^bearer$/i.test(scheme)) pair = value;
  else return undefined;
  const i = pair.indexOf(':');
  if (i <= 0 || i === pair.length - 1) return undefined;
  return { id: pair.slice(0, i), secret: pair.slice(i + 1) };
}
