import { createServer, type AddressInfo } from 'node:net';
import type { BrokerRole } from '../../core/vocabulary.js';
import { connectHost, normalizeAddress, type ConnectionGate, type Listener } from './connection-info.js';
import { listen, ownSockets } from './server-lifecycle.js';

export interface TcpListenerOptions {
  host: string;
  port: number;
  roles: readonly BrokerRole[];
  gate: ConnectionGate;
}

/** MQTT over plain TCP. */
export async function startTcpListener(o: TcpListenerOptions): Promise<Listener> {
  const admits = new Set(o.roles);
  const server = createServer((socket) => {
    const address = normalizeAddress(socket.remoteAddress);
    if (!o.gate.admit(address, 'tcp')) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    o.gate.attach(socket, { listener: 'tcp', address, admits });
  });
  const owned = ownSockets(server);
  await listen(server, o.port, o.host);
  const port = (server.address() as AddressInfo).port;
  return { name: 'tcp', port, url: `mqtt://${connectHost(o.host)}:${port}`, close: () => owned.close() };
}
