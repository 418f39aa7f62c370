import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AlarmLifecycleState, SignalClass } from '../../broker/contract/index.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { AckRefusal, AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import type { AlarmHandover } from '../partitions/alarm-handover.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import { CAP_CONTENT_TYPE } from '../alarms/cap.js';
import type { SiteRegistry } from '../registry/site-registry.js';
import { access, deny as denyAccess } from './access.js';
import { alarmView } from './alarm-view.js';
import { may, type Permission, type Principal } from './permissions.js';

export interface AlarmRoutesDeps {
  lifecycle: AlarmLifecycle;
  sites: SiteRegistry;
  metrics: Metrics;
  logger: Logger;
  /** With cloudSync.partitions: an acknowledgement of an alarm another worker holds is handed to that worker. */
  handover?: AlarmHandover;
}

const ListQuery = z
  .object({
    state: AlarmLifecycleState.optional(),
    class: SignalClass.optional(),
    district: z.string().min(1).max(64).optional(),
    site: z.string().min(1).max(64).optional(),
    all: z.enum(['true', 'false']).optional().describe('true: also the alarms back to normal'),
  })
  .strict();
const AckBody = z
  .object({
    operator: z.string().max(100).optional(),
    note: z.string().max(200).optional(),
    eventId: z.string().max(64).optional(),
    warnPublic: z.boolean().optional().describe('true: the department confirmed the danger, warn residents; false: end a public warning'),
  })
  .strict();
const ShelveBody = z.object({ minutes: z.number().int().positive(), reason: z.string().min(1).max(200) }).strict();

const ACK_STATUS: Record<AckRefusal, number> = { unknown: 404, forbidden: 403, 'wrong-district': 403, stale: 409, 'not-active': 409, unstamped: 400, invalid: 400, elsewhere: 202 };

/** Where an alarm is, for the permission table: its site (an owner's reach) and district (a fire department's). */
export const whereOf = (a: AlarmRecord) => ({ site: a.site, district: a.district });

/**
 * The fire departments' private API: the alarms a credential may see, one with
 * its journal (or its CAP message), acknowledgement, shelving; and the registry
 * details of the district's sites. The access hook (access.ts) has checked the
 * credential and the permission; each handler checks the district or site of
 * what is asked for, and counts every refusal.
 */
export function registerAlarmRoutes(app: FastifyInstance, d: AlarmRoutesDeps): void {
  const deny = (reply: FastifyReply, p: Principal, permission: Permission, message?: string) => denyAccess(reply, d.metrics, p, permission, message);
  const alarmFor = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, p: Principal, permission: Permission): AlarmRecord | undefined => {
    const a = d.lifecycle.get(req.params.id);
    if (!a) {
      void reply.code(404).send({ error: 'not found', code: 'COSAFE_ERR_ALARM_UNKNOWN' });
      return undefined;
    }
    if (!may(p, permission, whereOf(a))) {
      deny(reply, p, permission, p.role === 'owner' ? `alarm ${a.id} is of site ${a.site}, not one of this credential's` : `alarm ${a.id} is of district ${a.district}, not of this credential's`);
      return undefined;
    }
    return a;
  };
  const view = (a: AlarmRecord) => alarmView(a, d);

  app.get('/api/v1/alarms', { config: access('alarms.read') }, async (req, reply) => {
    const p = req.principal!;
    const q = ListQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: 'bad request', details: q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    const f = q.data;
    if (f.district && !may(p, 'alarms.read', f.district)) return deny(reply, p, 'alarms.read', `this credential may not read district ${f.district}`);
    const alarms = d.lifecycle
      .list({ ...(f.state ? { state: f.state } : {}), ...(f.district ? { district: f.district } : {}), includeNormal: f.all === 'true' })
      .filter((a) => may(p, 'alarms.read', whereOf(a)) && (!f.class || a.class === f.class) && (!f.site || a.site === f.site))
      // Unacknowledged first, then newest.
      .sort((x, y) => Number(y.state === 'active-unacknowledged') - Number(x.state === 'active-unacknowledged') || y.since - x.since);
    return { alarms: alarms.map(view) };
  });

  app.get<{ Params: { id: string } }>('/api/v1/alarms/:id', { config: access('alarms.read') }, async (req, reply) => {
    const p = req.principal!;
    const a = alarmFor(req, reply, p, 'alarms.read');
    if (!a) return reply;
    const messages = d.lifecycle.messages(a.id);
    if ((req.headers.accept ?? '').includes(CAP_CONTENT_TYPE)) {
      const latest = messages.at(-1);
      if (!latest) return reply.code(404).send({ error: 'no CAP message was sent for this alarm (yet)', code: 'COSAFE_ERR_ALARM_UNKNOWN' });
      return reply.type(CAP_CONTENT_TYPE).send(latest.xml);
    }
    return { alarm: view(a), journal: d.lifecycle.journal(a.id), messages: messages.map(({ xml: _x, ...m }) => m) };
  });

  app.post<{ Params: { id: string } }>('/api/v1/alarms/:id/ack', { config: access('alarms.ack') }, async (req, reply) => {
    const p = req.principal!;
    const body = AckBody.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad request', details: body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    const r = d.lifecycle.acknowledge({ alarmId: req.params.id, who: p, channel: 'http', ...clean(body.data) });
    if (r.ok) return { alarm: view(r.alarm), alreadyAcknowledged: r.already };
    if (d.handover && (r.reason === 'unknown' || r.reason === 'elsewhere')) return relayAck(req.params.id, p, clean(body.data), reply);
    if (r.reason === 'forbidden' || r.reason === 'wrong-district') d.metrics.inc('cosafe_http_denied_total', { permission: 'alarms.ack', role: p.role });
    return reply.code(ACK_STATUS[r.reason]).send({ error: `acknowledgement refused: ${r.reason}`, code: r.reason === 'unknown' ? 'COSAFE_ERR_ALARM_UNKNOWN' : 'COSAFE_ERR_ACK_REFUSED', reason: r.reason });
  });

  /**
   * With partitions: the alarm is of a partition another worker holds. Its
   * shared copy says whether this credential may acknowledge it (403 at once
   * if not); if so the acknowledgement goes to the holder through Redis, which
   * applies it within a second, and the answer is 202 with the holder's id.
   */
  const relayAck = async (alarmId: string, p: Principal, body: z.infer<typeof AckBody>, reply: FastifyReply) => {
    const h = d.handover!;
    let found: Awaited<ReturnType<AlarmHandover['find']>>;
    try {
      found = await h.find(alarmId);
    } catch (err) {
      d.logger.error({ code: 'COSAFE_ERR_ALARM_STATE', alarmId, err: (err as Error).message }, 'cannot reach the shared alarm state to hand an acknowledgement on');
      return reply.code(503).send({ error: 'the alarm is held by another cloud-sync worker and the shared alarm state cannot be reached: acknowledge again, or over MQTT', code: 'COSAFE_ERR_ALARM_STATE' });
    }
    if (!found) return reply.code(404).send({ error: 'acknowledgement refused: unknown', code: 'COSAFE_ERR_ALARM_UNKNOWN', reason: 'unknown' });
    const a = found.copy.alarm;
    if (!may(p, 'alarms.ack', a.district)) {
      d.metrics.inc('cosafe_alarm_acks_refused_total', { channel: 'http', reason: 'forbidden' });
      return deny(reply, p, 'alarms.ack', `alarm ${a.id} is of district ${a.district}, not of this credential's`);
    }
    try {
      const { holder } = await h.relayAck(found.partition, { alarmId, who: p, channel: 'http', ...body });
      return reply.code(202).send({ accepted: true, alarmId, partition: found.partition, holder, state: a.state });
    } catch (err) {
      d.logger.error({ code: 'COSAFE_ERR_ALARM_STATE', alarmId, err: (err as Error).message }, 'cannot hand an acknowledgement on to the holder of its partition');
      return reply.code(503).send({ error: 'the shared alarm state cannot be reached: acknowledge again, or over MQTT', code: 'COSAFE_ERR_ALARM_STATE' });
    }
  };

  app.post<{ Params: { id: string } }>('/api/v1/alarms/:id/shelve', { config: access('alarms.shelve') }, async (req, reply) => {
    const p = req.principal!;
    const body = ShelveBody.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad request', code: 'COSAFE_ERR_SHELVE_REFUSED', details: body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    const r = d.lifecycle.shelve(req.params.id, p, body.data.minutes, body.data.reason);
    if (r.ok) return { alarm: view(r.alarm) };
    const status = { unknown: 404, forbidden: 403, 'not-shelvable': 409, invalid: 400 }[r.reason];
    return reply.code(status).send({ error: r.message, code: r.reason === 'unknown' ? 'COSAFE_ERR_ALARM_UNKNOWN' : r.reason === 'forbidden' ? 'COSAFE_ERR_HTTP_FORBIDDEN' : 'COSAFE_ERR_SHELVE_REFUSED' });
  });

  app.post<{ Params: { id: string } }>('/api/v1/alarms/:id/unshelve', { config: access('alarms.shelve') }, async (req, reply) => {
    const p = req.principal!;
    const r = d.lifecycle.unshelve(req.params.id, p);
    if (r.ok) return { alarm: view(r.alarm) };
    return reply.code(r.reason === 'forbidden' ? 403 : 404).send({ error: r.message, code: r.reason === 'forbidden' ? 'COSAFE_ERR_HTTP_FORBIDDEN' : 'COSAFE_ERR_ALARM_UNKNOWN' });
  });

  app.get('/api/v1/sites', { config: access('sites.read') }, async (req, reply) => {
    const p = req.principal!;
    return { sites: d.sites.all().filter((s) => may(p, 'sites.read', { site: s.id, district: s.district })) };
  });

  app.get<{ Params: { id: string } }>('/api/v1/sites/:id', { config: access('sites.read') }, async (req, reply) => {
    const p = req.principal!;
    const site = d.sites.lookup(req.params.id);
    if (!site) return reply.code(404).send({ error: 'not found', code: 'COSAFE_ERR_SITE_UNKNOWN' });
    if (!may(p, 'sites.read', { site: site.id, district: site.district })) return deny(reply, p, 'sites.read', `site ${site.id} is not one this credential may read`);
    return { site };
  });
}

function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
