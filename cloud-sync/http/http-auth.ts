import type { Clock } from '../../core/clock.js';
import type { Metrics } from '../../core/metrics.js';
import type { Principal } from './permissions.js';

/**
 * What the HTTP API needs of the credential store (the broker's, injected by
 * the composition root: cloud-sync does not import the broker).
 */
export interface CredentialVerifier {
  /** The active credential with this secret, with its generation (scrypt once per secret: the store remembers what it verified). */
  verify(id: string, secret: string): Promise<{ principal: Principal; generation: number } | undefined>;
  /** The credential's state now (one row read, no scrypt): revoked, or rotated to a new generation. */
  current(id: string): { generation: number; revoked: boolean } | undefined;
}

export type AuthFailure = 'missing' | 'malformed' | 'unknown-or-wrong' | 'revoked-or-rotated';

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; reason: AuthFailure };

/**
 * Who an HTTP request is, from HTTP Basic (`identity id:secret`, RFC 7617) or
 * a bearer token of the same secret (`Bearer <id>:<secret>`, RFC 6750). The
 * scrypt cost is paid once per secret, not per request, by the credential
 * store itself: it remembers the secrets it verified, for the credential's
 * current generation only, in one memory with the broker's logins
 * (broker/auth/verified-secrets.ts); so a revoked or rotated credential stops
 * working at once, and there is no second cache here to keep in step.
 */
export class HttpAuthenticator {
  constructor(private readonly d: { verifier: CredentialVerifier; clock: Clock; metrics: Metrics }) {}

  async authenticate(authorization: string | undefined): Promise<AuthOutcome> {
    const fail = (reason: AuthFailure): AuthOutcome => {
      this.d.metrics.inc('cosafe_http_auth_failures_total', { reason });
      return { ok: false, reason };
    };
    if (!authorization) return fail('missing');
    const creds = parseAuthorization(authorization);
    if (!creds) return fail('malformed');
    const verified = await this.d.verifier.verify(creds.id, creds.secret);
    if (!verified) return fail('unknown-or-wrong');
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
