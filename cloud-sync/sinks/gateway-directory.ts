import type { GatewayStatus } from '../../broker/contract/index.js';
import type { Logger } from '../../core/logger.js';
import type { Sink } from './sink.js';

/** The last status of every gateway (online with its health, or offline by its last will), for /health and /api/v1/gateways. */
export class GatewayDirectory implements Sink {
  readonly name = 'gateways';
  private readonly gateways = new Map<string, GatewayStatus>();

  constructor(private readonly logger: Logger) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  onStatus(status: GatewayStatus): void {
    const key = `${status.site}/${status.gateway}`;
    const before = this.gateways.get(key);
    this.gateways.set(key, status);
    if (before?.state !== status.state) {
      const log = status.state === 'online' ? this.logger.info.bind(this.logger) : this.logger.warn.bind(this.logger);
      log({ gateway: status.gateway, site: status.site }, `gateway ${status.state}`);
    }
  }

  all(): GatewayStatus[] {
    return [...this.gateways.values()];
  }
}
