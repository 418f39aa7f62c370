import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { GatewayStatus } from '../broker/contract/index.js';
import { isCosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { ReadingStore } from './reading-store.js';

export interface HttpApiDeps {
  host: string;
  port: number;
  store: Pick<ReadingStore, 'latest' | 'history' | 'health'>;
  metrics: Metrics;
  logger: Logger;
  brokerConnected: () => boolean;
  /** Each lane's session with the broker. */
  brokerLanes: () => Record<string, boolean>;
  gateways: () => GatewayStatus[];
  pendingDeliveries: () => number;
  /** More of the hub's state for /health (the site registry, the dispatch link). */
  healthExtra?: () => Record<string, unknown>;
  /** Further routes (the fire departments' private API). */
  routes?: ((app: FastifyInstance) => void)[];
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

/** The hub's HTTP API: health, readings as JSON, Prometheus metrics. */
export async function startHttpApi(d: HttpApiDeps): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });

  app.get('/health', async (_req, reply) => {
    const store = d.store.health();
    const ok = d.brokerConnected() && store.ok;
    return reply.code(ok ? 200 : 503).send({
      status: ok ? 'ok' : 'degraded',
      broker: { connected: d.brokerConnected(), lanes: d.brokerLanes() },
      store,
      gateways: d.gateways(),
      dispatch: { pending: d.pendingDeliveries(), ...d.healthExtra?.() },
    });
  });

  app.get('/metrics', async (_req, reply) => reply.type(d.metrics.contentType).send(await d.metrics.render()));

  app.get('/api/v1/readings/latest', async (req, reply) => {
    const q = LatestQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(badRequest(q.error));
    return { readings: await d.store.latest(q.data) };
  });

  app.get('/api/v1/readings/history', async (req, reply) => {
    const q = HistoryQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(badRequest(q.error));
    return { readings: await d.store.history(q.data) };
  });

  app.get('/api/v1/gateways', async () => ({ gateways: d.gateways() }));

  for (const register of d.routes ?? []) register(app);

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

  const address = await app.listen({ host: d.host, port: d.port });
  d.logger.info({ url: address }, 'hub HTTP API listening');
  return { app, url: address };
}

function badRequest(error: z.ZodError) {
  return { error: 'bad request', details: error.issues.map((i) => `${i.path.join('.') || '(query)'}: ${i.message}`) };
}
