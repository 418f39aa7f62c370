import { readFileSync } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { GatewayStatus } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { HttpConfig } from '../core/config.js';
import { CosafeError, isCosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { access, deny, registerAccess } from './http/access.js';
import { HttpAuthenticator, type CredentialVerifier, type LoginGuard } from './http/http-auth.js';
import { mayAtAll, sitesOf, type Principal } from './http/permissions.js';
import { SessionStore } from './http/session-store.js';
import { registerSessionRoutes } from './http/session-routes.js';
import { PUBLIC_PREFIX } from './http/public-api.js';
import { WEB_PREFIX } from './http/web-assets.js';
import type { ReadingStore } from './reading-store.js';

export interface HttpApiDeps {
  http: HttpConfig;
  store: Pick<ReadingStore, 'latest' | 'history' | 'health'>;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** Who may ask: the broker's credential store and login guard (injected by the composition root), and where sessions are kept. */
  access: { verifier: CredentialVerifier; guard: LoginGuard; sessionsPath: string };
  brokerConnected: () => boolean;
  /** Each lane's session with the broker. */
  brokerLanes: () => Record<string, boolean>;
  gateways: () => GatewayStatus[];
  pendingDeliveries: () => number;
  /** More of the hub's state for /health (the site registry, the dispatch link). */
  healthExtra?: () => Record<string, unknown>;
  /** Further routes (the fire departments' private API, the pages' data). */
  routes?: ((app: FastifyInstance, http: HttpContext) => void)[];
}

export interface HttpRoute {
  method: string;
  url: string;
  /** The route's declared rule; null for a plugin's routes under a public prefix (static files). */
  access: string | null;
}

/** What further routes get from the HTTP API. */
export interface HttpContext {
  /** The listener speaks TLS. */
  secure: boolean;
  /** Whether a long-lived request's credential or session still holds (a live stream checks it on every heartbeat). */
  stillValid(req: FastifyRequest): boolean;
}

const LatestQuery = z.object({ site: z.string().optional(), device: z.string().optional() }).strict();
const HistoryQuery = z
  .object({
    site: z.string().optional(),
    device: z.string().min(1),
    metric: z.string().min(1),
    since: z.coerce.number().int().nonnegative().optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  })
  .strict();

/** How often expired sessions are deleted (and the session gauge set). */
const SESSION_SWEEP_MS = 60_000;

/**
 * The hub's HTTP API and pages: health, readings as JSON, Prometheus metrics,
 * sign-in, the pages (web/), and the routes of the other parts; over TLS when
 * `http.tls` says so. Every route declares who may call it (access.ts): the
 * anonymous get the public endpoints, the pages and `/health`'s one word.
 */
export async function startHttpApi(d: HttpApiDeps): Promise<{ app: FastifyInstance; url: string; routes: readonly HttpRoute[] }> {
  const c = d.http;
  const secure = c.tls.enabled;
  const https = secure
    ? { cert: readPem(c.tls.cert!, 'cert'), key: readPem(c.tls.key!, 'key'), ...(c.tls.ca ? { ca: readPem(c.tls.ca, 'ca') } : {}), requestCert: c.tls.requestClientCert, rejectUnauthorized: false }
    : undefined;
  // One instance type for the routes either way: HTTPS only changes the server underneath.
  const app = (https ? Fastify({ logger: false, trustProxy: c.trustProxy, https }) : Fastify({ logger: false, trustProxy: c.trustProxy })) as unknown as FastifyInstance;
  // Every route, as registered: the access table's test walks them all, so none is left out of it.
  const routes: HttpRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, access: r.config?.access ?? null });
  });
  await app.register(fastifyCookie);

  const sessions = SessionStore.open(d.access.sessionsPath, d.clock, { idleMs: c.sessions.idleMinutes * 60_000, maxMs: c.sessions.maxHours * 3_600_000 });
  const sweep = () => d.metrics.set('cosafe_http_sessions', {}, sessions.sweep());
  sweep();
  const sweeper = setInterval(sweep, SESSION_SWEEP_MS);
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    sessions.close();
  });
  const auth = new HttpAuthenticator({ verifier: d.access.verifier, guard: d.access.guard, sessions, clock: d.clock, metrics: d.metrics, logger: d.logger });
  // The public endpoints (public-api.ts) and the static pages are routes of plugins: public by their prefix.
  registerAccess(app, { auth, metrics: d.metrics, logger: d.logger, secure, allowedOrigins: c.allowedOrigins, publicPrefixes: [WEB_PREFIX, `${PUBLIC_PREFIX}/`] });
  registerSessionRoutes(app, { auth, metrics: d.metrics, secure, maxAgeSeconds: c.sessions.maxHours * 3600 });

  app.get('/health', { config: access('public') }, async (req, reply) => {
    const store = d.store.health();
    const ok = d.brokerConnected() && store.ok;
    const status = ok ? 'ok' : 'degraded';
    // Anyone may ask whether the hub is up; what it knows of sites and gateways is for a monitor or an admin.
    if (!req.principal || !mayAtAll(req.principal, 'health.read')) return reply.code(ok ? 200 : 503).send({ status });
    return reply.code(ok ? 200 : 503).send({
      status,
      broker: { connected: d.brokerConnected(), lanes: d.brokerLanes() },
      store,
      gateways: d.gateways(),
      dispatch: { pending: d.pendingDeliveries(), ...d.healthExtra?.() },
    });
  });

  // A scraper signs in with a monitor credential (Prometheus: basic_auth), which may do nothing else.
  app.get('/metrics', { config: access('metrics.read') }, async (_req, reply) => reply.type(d.metrics.contentType).send(await d.metrics.render()));

  app.get('/api/v1/readings/latest', { config: access('readings.read') }, async (req, reply) => {
    const q = LatestQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(badRequest(q.error));
    const reach = sitesOf(req.principal!);
    if (reach && q.data.site !== undefined && !reach.includes(q.data.site)) return notYours(reply, d.metrics, req.principal!, q.data.site);
    const readings = await d.store.latest(q.data);
    return { readings: reach ? readings.filter((r) => reach.includes(r.site)) : readings };
  });

  app.get('/api/v1/readings/history', { config: access('readings.read') }, async (req, reply) => {
    const q = HistoryQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(badRequest(q.error));
    const reach = sitesOf(req.principal!);
    const query = { ...q.data };
    if (reach) {
      // A device id is unique within a site only: an owner of several sites names the site.
      if (query.site === undefined && reach.length === 1) query.site = reach[0]!;
      if (query.site === undefined) return reply.code(400).send({ error: 'bad request', details: [`site: is required (this credential has ${reach.length} sites: ${reach.join(', ')})`] });
      if (!reach.includes(query.site)) return notYours(reply, d.metrics, req.principal!, query.site);
    }
    return { readings: await d.store.history(query) };
  });

  app.get('/api/v1/gateways', { config: access('gateways.read') }, async (req) => {
    const reach = sitesOf(req.principal!);
    return { gateways: d.gateways().filter((g) => !reach || reach.includes(g.site)) };
  });

  const context: HttpContext = { secure, stillValid: (req) => req.principal !== undefined && auth.stillValid(req.principal, req.authVia!, req.session?.token) };
  for (const register of d.routes ?? []) register(app, context);

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    // A plugin's own refusal (the public rate limit's 429, a body too large): its status and words, not a 500.
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const { statusCode, ...body } = err as unknown as Record<string, unknown>;
      return reply.code(statusCode as number).send(err instanceof Error ? { error: err.message, code: (err as { code?: string }).code } : body);
    }
    if (isCosafeError(err) && err.code === 'COSAFE_ERR_INFLUX_QUERY') {
      // The time-series server cannot answer (no InfluxQL, or down): its fault, not ours.
      return reply.code(502).send({ error: 'time-series server cannot answer', code: err.code, message: err.message });
    }
    d.logger.error({ err: err.message }, 'http api error');
    void reply.code(500).send({ error: 'internal error', message: err.message });
  });

  const address = await app.listen({ host: c.host, port: c.port });
  d.logger.info({ url: address, tls: secure }, 'hub HTTP API listening');
  return { app, url: address, routes };
}

function notYours(reply: FastifyReply, metrics: Metrics, p: Principal, site: string): FastifyReply {
  return deny(reply, metrics, p, 'readings.read', `site ${site} is not one of this credential's`);
}

function badRequest(error: z.ZodError) {
  return { error: 'bad request', details: error.issues.map((i) => `${i.path.join('.') || '(query)'}: ${i.message}`) };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_TLS_FILES', `cannot read http.tls.${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}
