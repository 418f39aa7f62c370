import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { persistBeforeAck } from './persist-before-ack.js';
import { SqlitePersistence } from './sqlite-persistence.js';

export interface HubBrokerOptions {
  host: string;
  port: number;
  logger: Logger;
  metrics: Metrics;
  /** Keep sessions and queued messages in `<dataDir>/broker.db` (survive a crash); without it, in memory. */
  dataDir?: string;
}

export interface HubBroker {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly url: string;
  connectedClients(): number;
  close(): Promise<void>;
}

/**
 * The hub's Aedes broker on a TCP listener: the only way into and out of the hub.
 * Authentication and per-role authorization come with the broker-security work.
 */
export async function startHubBroker(o: HubBrokerOptions): Promise<HubBroker> {
  const persistence = o.dataDir ? new SqlitePersistence(join(o.dataDir, 'broker.db')) : undefined;
  const aedes = await Aedes.createBroker({
    ...(persistence ? { persistence } : {}),
    // A frozen subscriber must not stall delivery to everyone else.
    drainTimeout: 30_000,
    // Enough concurrent deliveries for batching gateways and a fan-out consumer.
    concurrency: 1000,
    heartbeatInterval: 60_000,
  });
  aedes.on('clientError', (client, err) => {
    o.metrics.inc('cosafe_broker_client_errors_total', 'Client connections ended by a protocol or socket error');
    o.logger.warn({ client: client?.id, err: err.message }, 'broker client error');
  });
  aedes.on('connectionError', (client, err) => {
    o.metrics.inc('cosafe_broker_client_errors_total', 'Client connections ended by a protocol or socket error');
    o.logger.warn({ client: client?.id, err: err.message }, 'broker connection error');
  });
  aedes.on('client', (client) => o.logger.debug({ client: client.id }, 'client connected'));
  aedes.on('clientDisconnect', (client) => o.logger.debug({ client: client.id }, 'client disconnected'));
  // Before the listener opens, so what was acknowledged before a crash is queued before anyone connects.
  if (persistence) await persistBeforeAck(aedes, persistence, o.logger, o.metrics);

  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const connectHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  o.logger.info({ host: o.host, port }, 'broker listening (MQTT over TCP)');

  return {
    port,
    url: `mqtt://${connectHost}:${port}`,
    connectedClients: () => aedes.connectedClients,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await persistence?.destroy();
    },
  };
}
