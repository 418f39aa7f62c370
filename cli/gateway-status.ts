import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { Gateway } from '../edge/gateway.js';

/**
 * /health and /metrics of a gateway that runs without cloud-sync in its
 * process (`cosafe gateway`), on the `http` address of its config: where its
 * outbox, its drops and its connection to the hub can be seen. (With
 * cloud-sync in the same process, the hub HTTP API serves the same metrics.)
 */
export async function startGatewayStatus(o: { host: string; port: number; gateway: Gateway; metrics: Metrics; logger: Logger }): Promise<{ url: string; close(): Promise<void> }> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/health', async (_req, reply) => {
    const health = o.gateway.health();
    const ok = health.outbox?.connected === true && health.outbox.error === undefined;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', ...health });
  });
  app.get('/metrics', async (_req, reply) => reply.type(o.metrics.contentType).send(await o.metrics.render()));
  const url = await app.listen({ host: o.host, port: o.port });
  o.logger.info({ url }, 'gateway status (health, metrics) listening');
  return { url, close: () => app.close() };
}
