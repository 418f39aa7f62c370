import type { FastifyInstance } from 'fastify';
import type { AlarmEvent, GatewayStatus } from '../../broker/contract/index.js';
import { startFireDispatch, type FireDispatch, type FireDispatchDeps } from '../dispatch/fire-dispatch.js';
import type { Sink } from './sink.js';

/**
 * The fire departments (cloud-sync/dispatch/fire-dispatch.ts: site registry,
 * alarm lifecycle with its journal and escalation, webhooks and MQTT,
 * acknowledgements): the alarm lane's first sink, so the fire department never
 * waits for cloud-sync's bookkeeping.
 */
export class DispatchSink implements Sink {
  readonly name = 'dispatch';
  private dispatch: FireDispatch | undefined;

  constructor(private readonly deps: FireDispatchDeps) {}

  async start(): Promise<void> {
    this.dispatch = await startFireDispatch(this.deps);
  }

  async stop(): Promise<void> {
    await this.dispatch?.stop();
    this.dispatch = undefined;
  }

  onEvent(event: AlarmEvent): boolean {
    return this.require().onEvent(event);
  }

  onStatus(status: GatewayStatus): void {
    this.require().onStatus(status);
  }

  registerRoutes(app: FastifyInstance): void {
    this.require().registerRoutes(app);
  }

  pendingCount(): number {
    return this.dispatch?.pendingCount() ?? 0;
  }

  health(): Record<string, unknown> {
    return this.dispatch?.health() ?? {};
  }

  /** The running dispatch, for the sinks that follow its alarm lifecycle (public feeds). */
  fireDispatch(): FireDispatch {
    return this.require();
  }

  private require(): FireDispatch {
    if (!this.dispatch) throw new Error('the dispatch sink is not started');
    return this.dispatch;
  }
}
