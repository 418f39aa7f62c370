import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../core/metrics.js';
import type { AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import type { AlarmRecord } from '../alarms/alarm-store.js';
import { whereOf } from './alarm-routes.js';
import type { AlarmView } from './alarm-view.js';
import { may, type Principal } from './permissions.js';

/** A heartbeat every this often, so a console can tell a live stream from a dead one (and the credential is checked again). */
export const ALARM_HEARTBEAT_MS = 10_000;
/** A client that does not read: its stream is ended once this much waits unsent (it reconnects and gets a snapshot). */
const MAX_BUFFERED_BYTES = 1 << 20;
const MAX_STREAMS = 200;

export interface AlarmStreamDeps {
  lifecycle: AlarmLifecycle;
  view(a: AlarmRecord): AlarmView;
  metrics: Metrics;
  /** False once the stream's credential (or session) is no longer valid: revoked, rotated, signed out, expired. */
  stillValid(req: FastifyRequest): boolean;
}

/**
 * The fire departments' consoles' live alarms, as Server-Sent Events (WHATWG
 * HTML §9.2): a `snapshot` of every alarm the credential may see that is not
 * back to normal, then an `alarm` event each time one of them changes (raised,
 * delivered, escalated, acknowledged, cleared), once the change is durable.
 * A reconnecting console gets a fresh snapshot, so nothing falls between
 * streams. A `heartbeat` every few seconds re-checks the credential: a
 * revoked credential's stream ends within one heartbeat.
 */
export class AlarmStreams {
  private readonly open = new Set<() => void>();

  constructor(private readonly d: AlarmStreamDeps) {}

  get count(): number {
    return this.open.size;
  }

  serve(req: FastifyRequest, reply: FastifyReply, who: Principal): FastifyReply | undefined {
    if (this.open.size >= MAX_STREAMS) return reply.code(503).header('retry-after', '5').send({ error: 'too many live streams open; try again shortly' });
    const { lifecycle, view, metrics } = this.d;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
    const send = (event: string, data: unknown) => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (res.writableLength > MAX_BUFFERED_BYTES) close();
    };
    // Listen before the snapshot is read: both in this one synchronous turn, so no change falls between them.
    const changed = (a: AlarmRecord) => {
      if (may(who, 'alarms.read', whereOf(a))) send('alarm', { alarm: view(a) });
    };
    const unlisten = [lifecycle.observe(changed), lifecycle.observeDeliveries(changed)];
    res.write('retry: 2000\n\n');
    send('snapshot', { alarms: lifecycle.list({}).filter((a) => may(who, 'alarms.read', whereOf(a))).map(view), at: Date.now() });
    const heartbeat = setInterval(() => {
      if (!this.d.stillValid(req)) {
        send('signed-out', { reason: 'the credential or session is no longer valid' });
        close();
        return;
      }
      send('heartbeat', { at: Date.now() });
    }, ALARM_HEARTBEAT_MS);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      for (const u of unlisten) u();
      this.open.delete(close);
      metrics.set('cosafe_http_alarm_streams', {}, this.open.size);
      res.end();
    };
    this.open.add(close);
    metrics.set('cosafe_http_alarm_streams', {}, this.open.size);
    req.raw.on('close', close);
    res.on('error', close);
    return undefined;
  }

  /** Ends every stream (the hub stops; the consoles reconnect to the next one). */
  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}
