import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../core/metrics.js';
import type { PublicAlerts } from '../public/public-alerts.js';
import { areaConcerns } from '../public/public-area.js';

/** A comment-free heartbeat every this often, so a page can tell a live stream from a dead one. */
export const HEARTBEAT_MS = 15_000;
/** A client that does not read: its stream is ended once this much waits unsent (it resumes with Last-Event-ID). */
const MAX_BUFFERED_BYTES = 1 << 20;

export interface StreamLimits {
  maxStreams: number;
  maxStreamsPerAddress: number;
}

/**
 * Server-Sent Events of public alerts (WHATWG HTML §9.2): a `snapshot` of the
 * current alerts of the asked cells first, then every `alert` message as it is
 * committed, each with the public log's sequence number as its id. A client
 * that reconnects with Last-Event-ID gets what it missed from the log, or a
 * snapshot again when the log no longer reaches back that far. Heartbeats are
 * events (not comments) so that the page's EventSource sees them.
 */
export class PublicStreams {
  private readonly open = new Set<() => void>();
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly d: { alerts: PublicAlerts; limits: StreamLimits; metrics: Metrics }) {}

  get count(): number {
    return this.open.size;
  }

  /** Limits first: false when the client may not open another stream (the caller answers 429). */
  admits(address: string): boolean {
    return this.open.size < this.d.limits.maxStreams && (this.perAddress.get(address) ?? 0) < this.d.limits.maxStreamsPerAddress;
  }

  serve(req: FastifyRequest, reply: FastifyReply, cells: readonly string[], lastEventId: number | undefined): void {
    const { alerts, metrics } = this.d;
    const address = req.ip;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'access-control-allow-origin': '*',
      'x-content-type-options': 'nosniff',
    });
    const send = (event: string, data: unknown, id?: number) => {
      res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (res.writableLength > MAX_BUFFERED_BYTES) close();
    };
    const concerns = (a: { area: { resolution: number; cells: readonly string[] } }) => cells.length === 0 || areaConcerns(a.area, cells);
    // Listen before reading the log: both happen in this one synchronous turn, so nothing falls between them.
    const unlisten = alerts.listen((m) => {
      if (concerns(m.alert)) send('alert', m.alert, m.seq);
    });
    res.write('retry: 3000\n\n');
    const missed = lastEventId === undefined ? undefined : alerts.since(lastEventId);
    if (missed) for (const m of missed) if (concerns(m.alert)) send('alert', m.alert, m.seq);
    if (!missed) send('snapshot', { alerts: alerts.current(cells) }, alerts.lastSeq());
    const heartbeat = setInterval(() => send('heartbeat', { at: Date.now() }), HEARTBEAT_MS);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unlisten();
      this.open.delete(close);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
      metrics.set('cosafe_public_streams', {}, this.open.size);
      res.end();
    };
    this.open.add(close);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    metrics.set('cosafe_public_streams', {}, this.open.size);
    req.raw.on('close', close);
    res.on('error', close);
  }

  /** Ends every stream (the hub stops; the pages reconnect to the next one). */
  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}
