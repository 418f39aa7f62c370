import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../http-api.js';
import type { GatewayStatus } from '../../broker/contract/index.js';
import type { PublicAlerts } from '../public/public-alerts.js';
import { startPublicFeeds, type PublicFeeds, type PublicFeedsDeps } from '../public-feeds.js';
import type { DispatchSink } from './dispatch-sink.js';
import type { Sink } from './sink.js';

/**
 * Residents' alerts and agencies' summaries (cloud-sync/public-feeds.ts): they
 * follow the alarm lifecycle of the dispatch sink, so they start after it (and
 * after the store they write agency records through) and stop before it.
 */
export class PublicFeedsSink implements Sink {
  readonly name = 'public-feeds';
  private feeds: PublicFeeds | undefined;

  constructor(private readonly deps: Omit<PublicFeedsDeps, 'dispatch'> & { dispatch: DispatchSink }) {}

  async start(): Promise<void> {
    this.feeds = await startPublicFeeds({ ...this.deps, dispatch: this.deps.dispatch.fireDispatch() });
  }

  async stop(): Promise<void> {
    await this.feeds?.stop();
    this.feeds = undefined;
  }

  onStatus(status: GatewayStatus): void {
    this.feeds?.onStatus(status);
  }

  /** The residents' alerts, once started (the time-series sink records them). */
  alerts(): PublicAlerts | undefined {
    return this.feeds?.alerts;
  }

  registerRoutes(app: FastifyInstance, http: Pick<HttpContext, 'secure'>): void {
    this.require().registerRoutes(app, http);
  }

  health(): Record<string, unknown> {
    return this.feeds?.health() ?? {};
  }

  private require(): PublicFeeds {
    if (!this.feeds) throw new Error('the public feeds sink is not started');
    return this.feeds;
  }
}
