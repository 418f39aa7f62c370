import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Metrics } from '../../core/metrics.js';
import { access, clearSessionCookie, setSessionCookie } from './access.js';
import type { HttpAuthenticator } from './http-auth.js';
import { permissionTable, type Principal } from './permissions.js';
import type { Session } from './session-store.js';

const LoginBody = z.object({ username: z.string().min(1).max(128), password: z.string().min(1).max(256) }).strict();

/** The page each role lands on after signing in. */
export const HOME_PAGE: Readonly<Partial<Record<Principal['role'], string>>> = {
  owner: '/web/owner/',
  'fire-department': '/web/console/',
  admin: '/web/console/',
};

/**
 * Sign-in for the pages' browsers: `POST /api/v1/session` checks the
 * credential (rate-limited and counted as any other login) and sets a new
 * session cookie, ending the one the browser came with (a new token at every
 * login: no session fixation); `GET` says who the session is, with the CSRF
 * token the page sends on every change; `DELETE` signs out.
 */
export function registerSessionRoutes(app: FastifyInstance, d: { auth: HttpAuthenticator; metrics: Metrics; secure: boolean; maxAgeSeconds: number }): void {
  app.post('/api/v1/session', { config: access('public') }, async (req, reply) => {
    const body = LoginBody.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'give username and password', code: 'COSAFE_ERR_HTTP_UNAUTHENTICATED', details: body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`) });
    const r = await d.auth.login(body.data.username, body.data.password, { address: req.ip, agent: String(req.headers['user-agent'] ?? '') });
    if (!r.ok) {
      if (r.reason === 'rate-limited') {
        return reply.code(429).header('retry-after', String(r.retryAfterSeconds ?? 60)).send({ error: 'too many failed sign-ins; wait a minute and try again', code: 'COSAFE_ERR_HTTP_LOGIN_LIMIT', reason: r.reason });
      }
      return reply.code(401).send({ error: 'unknown username or wrong password', code: 'COSAFE_ERR_HTTP_UNAUTHENTICATED', reason: r.reason });
    }
    if (!permissionTable[r.principal.role]) {
      // A machine's credential (gateway, device, service) signs in nowhere: it has nothing to see here.
      d.auth.logout(r.session!.token);
      d.metrics.inc('cosafe_http_denied_total', { permission: 'session', role: r.principal.role });
      return reply.code(403).send({ error: `a ${r.principal.role} credential has no pages; sign in with a person's credential`, code: 'COSAFE_ERR_HTTP_FORBIDDEN' });
    }
    if (req.session) d.auth.logout(req.session.token);
    setSessionCookie(reply, d.secure, r.session!.token, d.maxAgeSeconds);
    return reply.code(201).send(describe(r.principal, r.session));
  });

  app.get('/api/v1/session', { config: access('authenticated') }, async (req) => describe(req.principal!, req.session, req));

  app.delete('/api/v1/session', { config: access('authenticated') }, async (req, reply) => {
    if (req.session) d.auth.logout(req.session.token);
    clearSessionCookie(reply, d.secure);
    return reply.code(204).send();
  });
}

function describe(p: Principal, session: Session | undefined, req?: FastifyRequest) {
  return {
    identity: p.id,
    role: p.role,
    ...(p.district ? { district: p.district } : {}),
    ...(p.sites ? { sites: p.sites } : {}),
    via: req?.authVia ?? 'session',
    home: HOME_PAGE[p.role] ?? null,
    may: permissionTable[p.role]?.may ?? [],
    ...(session ? { csrf: session.csrf, expiresAt: session.expiresAt } : {}),
  };
}
