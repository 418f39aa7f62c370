import { timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type {} from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { AuthOutcome, AuthVia, HttpAuthenticator, Presented } from './http-auth.js';
import { mayAtAll, type Permission, type Principal } from './permissions.js';
import type { Session } from './session-store.js';

/**
 * Who may call a route: anyone (`public`; a credential, if one is presented,
 * still names the caller), anyone with a valid credential (`authenticated`),
 * or whoever holds a permission of the one table (permissions.ts). Every route
 * declares one (`config: access(...)`); a route that does not is refused, so a
 * route added without thinking about it is closed, not open.
 */
export type Access = 'public' | 'authenticated' | Permission;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** Who is asking, once the access hook has run; undefined for anonymous callers of public routes. */
    principal?: Principal;
    authVia?: AuthVia;
    /** The browser session the request came with (its token, for logout). */
    session?: Session & { token: string };
  }
}

/** For route options: `app.get(path, { config: access('alarms.read') }, handler)`. */
export const access = (rule: Access) => ({ access: rule });

/** The session cookie: `__Host-` under TLS (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain, so no other host can set it). */
export const sessionCookieName = (secure: boolean): string => (secure ? '__Host-cosafe_session' : 'cosafe_session');

/** The header a page sends its session's CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

export interface AccessOptions {
  auth: HttpAuthenticator;
  metrics: Metrics;
  logger: Logger;
  /** The listener speaks TLS: cookies are Secure. */
  secure: boolean;
  /** Origins besides the hub's own that may send state-changing requests (a reverse proxy's public URL). */
  allowedOrigins: readonly string[];
  /** URL prefixes served by a plugin that cannot carry route config (static files): public. */
  publicPrefixes: readonly string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The private API's one door, as a hook that runs before every route: it
 * authenticates what the request presents (HTTP Basic or Bearer, the session
 * cookie, a verified client certificate), checks the route's rule against the
 * permission table, and guards every state-changing request against
 * cross-site request forgery: refused when it comes from another origin
 * (Fetch Metadata `Sec-Fetch-Site`, `Origin`), and, for a browser session,
 * unless it carries the session's token (OWASP CSRF cheat sheet: SameSite
 * cookies, a synchronizer token and an origin check, together). Every refusal
 * is counted. Handlers then check what the table cannot know: the district or
 * site of the thing asked for.
 */
export function registerAccess(app: FastifyInstance, o: AccessOptions): void {
  const cookie = sessionCookieName(o.secure);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('authVia', undefined);
  app.decorateRequest('session', undefined);

  app.addHook('onRequest', async (req, reply) => {
    const rule = ruleOf(req, o.publicPrefixes);
    if (rule === undefined) {
      o.logger.error({ route: req.routeOptions.url, method: req.method }, 'a route without an access rule was refused (a bug: give it config: access(...))');
      return reply.code(500).send({ error: 'this route has no access rule', code: 'COSAFE_ERR_HTTP_FORBIDDEN' });
    }
    const presented = presentedBy(req, cookie);
    const anything = presented.authorization !== undefined || presented.sessionToken !== undefined || presented.certificateCn !== undefined;
    let outcome: AuthOutcome | undefined;
    if (anything || rule !== 'public') outcome = await o.auth.authenticate(presented);
    if (outcome?.ok) {
      req.principal = outcome.principal;
      req.authVia = outcome.via;
      if (outcome.session) req.session = outcome.session;
    } else if (outcome) {
      const staleCookie = presented.sessionToken !== undefined && presented.authorization === undefined;
      // A stale cookie: the cookie goes, and on a public route the caller is simply anonymous. A wrong secret
      // is refused even there, so that a program (a monitor's /health check) learns its credential is wrong.
      if (staleCookie && outcome.reason !== 'rate-limited') clearSessionCookie(reply, o.secure);
      if (outcome.reason === 'rate-limited') {
        return reply
          .code(429)
          .header('retry-after', String(outcome.retryAfterSeconds ?? 60))
          .send({ error: 'too many failed logins; try again later', code: 'COSAFE_ERR_HTTP_LOGIN_LIMIT', reason: outcome.reason });
      }
      if (rule !== 'public' || presented.authorization !== undefined) return unauthenticated(req, reply, outcome.reason);
    }
    if (rule !== 'public' && rule !== 'authenticated' && !mayAtAll(req.principal!, rule)) return deny(reply, o.metrics, req.principal!, rule);
    if (!SAFE_METHODS.has(req.method)) {
      // A public change (signing in) has no session's rights to abuse; the origin check stops login CSRF.
      const needsToken = rule !== 'public' && req.authVia === 'session';
      const why = crossSite(req, o.allowedOrigins) ?? (needsToken && !tokenMatches(req.headers[CSRF_HEADER], req.session!.csrf) ? 'csrf-token' : undefined);
      if (why) {
        o.metrics.inc('cosafe_http_csrf_refused_total', { why });
        return reply.code(403).send({
          error: why === 'csrf-token' ? `a state-changing request of a page must carry its session's ${CSRF_HEADER} header` : 'a state-changing request from another site is refused',
          code: 'COSAFE_ERR_HTTP_CSRF',
          reason: why,
        });
      }
    }
    return undefined;
  });
}

/** Sends 403 for `permission` and counts it. */
export function deny(reply: FastifyReply, metrics: Metrics, p: Principal, permission: Permission, message = `a ${p.role} credential may not do this`): FastifyReply {
  metrics.inc('cosafe_http_denied_total', { permission, role: p.role });
  return reply.code(403).send({ error: 'forbidden', code: 'COSAFE_ERR_HTTP_FORBIDDEN', message });
}

export function setSessionCookie(reply: FastifyReply, secure: boolean, token: string, maxAgeSeconds: number): void {
  void reply.setCookie(sessionCookieName(secure), token, { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: maxAgeSeconds });
}

export function clearSessionCookie(reply: FastifyReply, secure: boolean): void {
  void reply.clearCookie(sessionCookieName(secure), { httpOnly: true, sameSite: 'strict', secure, path: '/' });
}

function ruleOf(req: FastifyRequest, publicPrefixes: readonly string[]): Access | undefined {
  const declared = req.routeOptions.config?.access;
  if (declared) return declared;
  const url = req.routeOptions.url;
  // No route matched: Fastify's 404 answers, and says nothing.
  if (url === undefined) return 'public';
  return publicPrefixes.some((p) => url.startsWith(p)) ? 'public' : undefined;
}

function presentedBy(req: FastifyRequest, cookie: string): Presented {
  const socket = req.raw.socket as Partial<TLSSocket>;
  let certificateCn: string | undefined;
  // Only a certificate the handshake verified against http.tls.ca names anyone.
  if (socket.encrypted && socket.authorized && typeof socket.getPeerCertificate === 'function') {
    const cn = socket.getPeerCertificate().subject?.CN;
    certificateCn = Array.isArray(cn) ? cn[0] : cn;
  }
  return { authorization: req.headers.authorization, sessionToken: req.cookies?.[cookie], certificateCn, address: req.ip };
}

function unauthenticated(req: FastifyRequest, reply: FastifyReply, reason: string): FastifyReply {
  // A page's own fetch (Fetch Metadata: not a navigation) gets no Basic challenge, which would open the
  // browser's login dialog over the page; it signs in on the login page instead. Programs get the challenge.
  const mode = req.headers['sec-fetch-mode'];
  const challenge = mode !== undefined && mode !== 'navigate' ? 'Session realm="cosafe"' : 'Basic realm="cosafe", charset="UTF-8"';
  return reply.code(401).header('www-authenticate', challenge).send({ error: 'unauthenticated', code: 'COSAFE_ERR_HTTP_UNAUTHENTICATED', reason, login: '/web/login/' });
}

/** Why a state-changing request looks cross-site, or undefined: none of the browser's signs say so (a program, or the hub's own page). */
function crossSite(req: FastifyRequest, allowed: readonly string[]): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'fetch-site';
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  if (origin === `${req.protocol}://${req.host}` || allowed.includes(origin)) return undefined;
  return 'origin';
}

function tokenMatches(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string' || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
