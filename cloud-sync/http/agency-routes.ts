import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../core/metrics.js';
import type { AgencySink } from '../agency/agency-sink.js';
import { access, deny } from './access.js';
import { may } from './permissions.js';

/**
 * The agencies' private API: the district summaries (counts, no site) their
 * credential reaches, through the one permission table (`agency.read`).
 */
export function registerAgencyRoutes(app: FastifyInstance, d: { agency: AgencySink; metrics: Metrics }): void {
  app.get('/api/v1/agency/summary', { config: access('agency.read') }, async (req) => {
    const p = req.principal!;
    return { districts: d.agency.districts().filter((district) => may(p, 'agency.read', district)).map((district) => d.agency.summary(district)) };
  });

  app.get<{ Params: { district: string } }>('/api/v1/agency/districts/:district/summary', { config: access('agency.read') }, async (req, reply) => {
    const p = req.principal!;
    const { district } = req.params;
    if (!may(p, 'agency.read', district)) return deny(reply, d.metrics, p, 'agency.read', `this credential may not read district ${district}`);
    if (!d.agency.districts().includes(district)) return reply.code(404).send({ error: `no district "${district}"`, code: 'COSAFE_ERR_PUBLIC_REQUEST' });
    return { summary: d.agency.summary(district) };
  });
}
