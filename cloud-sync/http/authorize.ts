import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../core/metrics.js';
import type { HttpAuthenticator } from './http-auth.js';
import { mayAtAll, type Permission, type Principal } from './permissions.js';

export interface Authorizer {
  /** Who is asking, if they may have `permission` at all; otherwise the reply is sent (401 or 403) and undefined returned. */
  who(req: FastifyRequest, reply: FastifyReply, permission: Permission): Promise<Principal | undefined>;
  /** Sends 403 for `permission` and counts it. */
  deny(reply: FastifyReply, p: Principal, permission: Permission, message?: string): FastifyReply;
}

/**
 * The private API's one door: every request authenticates with the broker's
 * credentials, and is checked against the one permission table; every
 * refusal is counted (401: cosafe_http_auth_failures_total, 403:
 * cosafe_http_denied_total).
 */
export function authorizer(d: { auth: HttpAuthenticator; metrics: Metrics }): Authorizer {
  const deny = (reply: FastifyReply, p: Principal, permission: Permission, message = `a ${p.role} credential may not do this`) => {
    d.metrics.inc('cosafe_http_denied_total', { permission, role: p.role });
    return reply.code(403).send({ error: 'forbidden', code: 'COSAFE_ERR_HTTP_FORBIDDEN', message });
  };
  return {
    deny,
    async who(req, reply, permission) {
      const r = await d.auth.authenticate(req.headers.authorization);
      if (!r.ok) {
        void reply
          .code(401)
          .header('www-authenticate', 'Basic realm="cosafe", charset="UTF-8"')
          .send({ error: 'unauthenticated', code: 'COSAFE_ERR_HTTP_UNAUTHENTICATED', reason: r.reason });
        return undefined;
      }
      if (!mayAtAll(r.principal, permission)) {
        void deny(reply, r.principal, permission);
        return undefined;
      }
      return r.principal;
    },
  };
}
