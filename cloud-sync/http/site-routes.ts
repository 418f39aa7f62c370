import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { GatewayStatus } from '../../broker/contract/index.js';
import type { Clock } from '../../core/clock.js';
import type { Metrics } from '../../core/metrics.js';
import { occurrencesOf } from '../alarms/alarm-history.js';
import type { AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import type { ReadingStore } from '../reading-store.js';
import type { SiteRegistry } from '../registry/site-registry.js';
import { access, deny } from './access.js';
import { AlarmStreams } from './alarm-stream.js';
import { alarmView } from './alarm-view.js';
import { may, type Permission } from './permissions.js';
import { siteDevices } from './site-devices.js';

export interface SiteRoutesDeps {
  lifecycle: AlarmLifecycle;
  sites: SiteRegistry;
  store: Pick<ReadingStore, 'latest'>;
  gateways: () => GatewayStatus[];
  metrics: Metrics;
  clock: Clock;
  stillValid(req: FastifyRequest): boolean;
}

const HistoryQuery = z.object({ hours: z.coerce.number().int().min(1).max(24 * 90).default(24 * 7) }).strict();
const MAX_OCCURRENCES = 200;

/**
 * What the pages read: a site's devices and their state (the owner's page), a
 * site's alarm history with who acknowledged and when, and the live alarm
 * stream of the fire departments' consoles.
 */
export function registerSiteRoutes(app: FastifyInstance, d: SiteRoutesDeps): AlarmStreams {
  const view = (a: Parameters<typeof alarmView>[0]) => alarmView(a, d);
  const streams = new AlarmStreams({ lifecycle: d.lifecycle, view, metrics: d.metrics, stillValid: d.stillValid });
  // Before the server closes: it waits for every open connection, and a live stream never ends by itself.
  app.addHook('preClose', (done) => {
    streams.closeAll();
    done();
  });

  /** The site of the path, if the caller may `permission` it; otherwise the reply (404 or 403) is sent. */
  const siteFor = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, permission: Permission) => {
    const p = req.principal!;
    const site = d.sites.lookup(req.params.id);
    // A site the registry does not know is still an owner's, if their credential names it.
    if (!may(p, permission, { site: req.params.id, district: site?.district ?? null })) {
      void deny(reply, d.metrics, p, permission, `site ${req.params.id} is not one this credential may see`);
      return undefined;
    }
    return { id: req.params.id, entry: site ?? null };
  };

  app.get<{ Params: { id: string } }>('/api/v1/sites/:id/devices', { config: access('devices.read') }, async (req, reply) => {
    const site = siteFor(req, reply, 'devices.read');
    if (!site) return reply;
    const [latest, alarms] = [await d.store.latest({ site: site.id }), d.lifecycle.list({})];
    return { site: site.entry ?? { id: site.id }, now: d.clock.now(), ...siteDevices({ site: site.id, statuses: d.gateways(), latest, alarms }) };
  });

  app.get<{ Params: { id: string } }>('/api/v1/sites/:id/alarm-history', { config: access('alarms.read') }, async (req, reply) => {
    const site = siteFor(req, reply, 'alarms.read');
    if (!site) return reply;
    const q = HistoryQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: 'bad request', details: q.error.issues.map((i) => `${i.path.join('.') || '(query)'}: ${i.message}`) });
    const since = d.clock.now() - q.data.hours * 3_600_000;
    const occurrences = occurrencesOf(d.lifecycle.siteJournal(site.id, since))
      .reverse()
      .slice(0, MAX_OCCURRENCES)
      .map((o) => {
        const a = d.lifecycle.get(o.alarmId);
        return { ...o, device: a?.device ?? null, condition: a?.condition ?? null, class: a?.class ?? null, location: a?.lastEvent.location ?? null };
      });
    return { site: site.id, since, occurrences };
  });

  app.get('/api/v1/alarms/stream', { config: access('alarms.read') }, (req, reply) => streams.serve(req, reply, req.principal!));
  return streams;
}
