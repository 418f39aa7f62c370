import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PublicConfigView, type PublicAlert } from '../../broker/contract/index.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { PublicConfig } from '../../core/public-config.js';
import { CAP_CONTENT_TYPE, type CapStatus } from '../alarms/cap.js';
import type { PublicAlerts } from '../public/public-alerts.js';
import { parseCells } from '../public/public-area.js';
import { ATOM_CONTENT_TYPE, buildAtomFeed } from '../public/public-feed.js';
import { sendCacheable } from './http-cache.js';
import { PublicStreams } from './public-stream.js';
import { registerWebAssets } from './web-assets.js';

export const PUBLIC_PREFIX = '/public/v1';

export interface PublicApiDeps {
  alerts: PublicAlerts;
  /** The HTTP listener speaks TLS (the pages' headers say so). */
  tls: boolean;
  config: PublicConfig;
  capStatus: CapStatus;
  /** Districts that have a feed: those of the registry and of the policy. */
  districts: () => string[];
  metrics: Metrics;
  logger: Logger;
}

/** Lists and feeds may be kept this long by caches: an alert is seconds old when a poller sees it. */
const LIST_MAX_AGE_S = 5;

/**
 * The public endpoints, apart from the private API: their own route prefix
 * and Fastify plugin (encapsulation), anonymous, rate-limited per client
 * address, cacheable (ETag, Cache-Control), CORS open for GET so that other
 * sites may show the alerts; and the residents' page with its assets. Nothing
 * here reads the registry or the alarms: only the public alerts, which hold
 * nothing private.
 */
export function registerPublicApi(app: FastifyInstance, d: PublicApiDeps): { streams: PublicStreams } {
  const streams = new PublicStreams({ alerts: d.alerts, limits: d.config, metrics: d.metrics });
  app.addHook('preClose', (done) => {
    streams.closeAll();
    done();
  });
  void app.register(async (scope) => {
    await scope.register(rateLimit, {
      max: d.config.requestsPerMinute,
      timeWindow: 60_000,
      keyGenerator: (req) => req.ip,
      onExceeded: () => d.metrics.inc('cosafe_public_requests_limited_total', { limit: 'rate' }),
      errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'too many requests', code: 'COSAFE_ERR_PUBLIC_RATE_LIMITED', message: `at most ${ctx.max} requests a minute; retry in ${ctx.after}` }),
    });
    scope.addHook('onSend', async (_req, reply, payload) => {
      void reply.header('access-control-allow-origin', '*').header('x-content-type-options', 'nosniff');
      return payload;
    });
    scope.options(`${PUBLIC_PREFIX}/*`, (_req, reply) =>
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, HEAD, OPTIONS')
        .header('access-control-allow-headers', 'Last-Event-ID, If-None-Match')
        .header('access-control-max-age', '86400')
        .send(),
    );

    scope.get(`${PUBLIC_PREFIX}/config`, (req, reply) => {
      const view = PublicConfigView.parse({ v: 1, resolution: d.config.resolution, coarsestResolution: d.config.coarsestResolution, languages: d.config.languages, status: d.capStatus });
      return sendCacheable(req, reply, JSON.stringify(view), 'application/json; charset=utf-8', 60);
    });

    scope.get<{ Querystring: { cells?: string } }>(`${PUBLIC_PREFIX}/alerts`, (req, reply) => {
      const cells = cellsOf(req, reply);
      if (!cells) return reply;
      return sendCacheable(req, reply, JSON.stringify({ alerts: d.alerts.current(cells) }), 'application/json; charset=utf-8', LIST_MAX_AGE_S);
    });

    scope.get<{ Querystring: { cells?: string; lastEventId?: string } }>(`${PUBLIC_PREFIX}/alerts/stream`, (req, reply) => {
      const cells = cellsOf(req, reply);
      if (!cells) return reply;
      if (!streams.admits(req.ip)) {
        d.metrics.inc('cosafe_public_requests_limited_total', { limit: 'streams' });
        return reply.code(429).header('retry-after', '30').send({ error: 'too many open streams', code: 'COSAFE_ERR_PUBLIC_RATE_LIMITED' });
      }
      // EventSource sends Last-Event-ID itself on a reconnect; `lastEventId` in the query serves a page's first connect.
      const raw = req.headers['last-event-id'] ?? req.query.lastEventId;
      const last = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
      streams.serve(req, reply, cells, last);
      return reply;
    });

    scope.get<{ Params: { file: string } }>(`${PUBLIC_PREFIX}/alerts/:file`, (req, reply) => {
      const m = /^(pa_[0-9a-f]{32})(\.cap\.xml|\.json)?$/.exec(req.params.file);
      const stored = m ? d.alerts.get(m[1]!) : undefined;
      if (!m || !stored) return reply.code(404).send({ error: 'no such public alert', code: 'COSAFE_ERR_PUBLIC_REQUEST' });
      if (m[2] === '.cap.xml') return sendCacheable(req, reply, stored.latestXml, `${CAP_CONTENT_TYPE}; charset=utf-8`, LIST_MAX_AGE_S);
      return sendCacheable(req, reply, JSON.stringify({ alert: stored.alert }), 'application/json; charset=utf-8', LIST_MAX_AGE_S);
    });

    const feed = (req: FastifyRequest, reply: FastifyReply, district: string | undefined) => {
      const base = baseUrlOf(req, d.config);
      const alerts = d.alerts.current().filter((a: PublicAlert) => !district || a.district === district);
      const selfUrl = `${base}${PUBLIC_PREFIX}/feeds/${district ? `${district}/` : ''}cap.atom`;
      const xml = buildAtomFeed({
        selfUrl,
        apiBase: `${base}${PUBLIC_PREFIX}`,
        title: district ? `cosafe public alerts, district ${district}` : 'cosafe public alerts',
        alerts,
        updated: alerts.reduce((t, a) => Math.max(t, a.updated), 0) || startedAt,
      });
      return sendCacheable(req, reply, xml, `${ATOM_CONTENT_TYPE}; charset=utf-8`, LIST_MAX_AGE_S);
    };
    const startedAt = Date.now();
    scope.get(`${PUBLIC_PREFIX}/feeds/cap.atom`, (req, reply) => feed(req, reply, undefined));
    scope.get<{ Params: { district: string } }>(`${PUBLIC_PREFIX}/feeds/:district/cap.atom`, (req, reply) => {
      const district = req.params.district;
      if (!d.districts().includes(district)) return reply.code(404).send({ error: `no district "${district}"`, code: 'COSAFE_ERR_PUBLIC_REQUEST' });
      return feed(req, reply, district);
    });

    // The pages of every role and their assets: anonymous and rate-limited like the rest of this scope; the data they show is not public.
    await registerWebAssets(scope, { tls: d.tls });
  });
  return { streams };
}

function cellsOf(req: FastifyRequest<{ Querystring: { cells?: string } }>, reply: FastifyReply): string[] | undefined {
  const r = parseCells(req.query.cells);
  if (r.ok) return r.cells;
  void reply.code(400).send({ error: 'bad request', code: 'COSAFE_ERR_PUBLIC_REQUEST', details: [r.error] });
  return undefined;
}

/** The hub's public URL: configured, or as the client reached it. */
function baseUrlOf(req: FastifyRequest, config: PublicConfig): string {
  if (config.baseUrl) return config.baseUrl.replace(/\/$/, '');
  return `${req.protocol}://${req.host}`;
}
