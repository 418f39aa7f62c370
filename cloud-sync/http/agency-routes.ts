import type { FastifyInstance } from 'fastify';
import type { AgencySink } from '../agency/agency-sink.js';
import type { Authorizer } from './authorize.js';
import { may } from './permissions.js';

/**
 * The agencies' private API: the district summaries (counts, no site) their
 * credential reaches, through the one permission table (`agency.read`).
 */
export function registerAgencyRoutes(app: FastifyInstance, d: { agency: AgencySink; authorize: Authorizer }): void {
  app.get('/api/v1/agency/summary', async (req, reply) => {
    const p = await d.authorize.who(req, reply, 'agency.read');
    if (!p) return reply;
    return { districts: d.agency.districts().filter((district) => may(p, 'agency.read', district)).map((district) => d.agency.summary(district)) };
  });

  app.get<{ Params: { district: string } }>('/api/v1/agency/districts/:district/summary', async (req, reply) => {
    const p = await d.authorize.who(req, reply, 'agency.read');
    if (!p) return reply;
    const { district } = req.params;
    if (!may(p, 'agency.read', district)) return d.authorize.deny(reply, p, 'agency.read', `this credential may not read district ${district}`);
    if (!d.agency.districts().includes(district)) return reply.code(404).send({ error: `no district "${district}"`, code: 'COSAFE_ERR_PUBLIC_REQUEST' });
    return { summary: d.agency.summary(district) };
  });
}
