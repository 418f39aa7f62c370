import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { BrokerRole } from '../../core/vocabulary.js';
import { connectHost, normalizeAddress, type ConnectionGate, type Listener } from './connection-info.js';
import { listen, ownSockets } from './server-lifecycle.js';

export interface WsListenerOptions {
  host: string;
  port: number;
  path: string;
  roles: readonly BrokerRole[];
  maxPacketBytes: number;
  gate: ConnectionGate;
}

/** MQTT over WebSocket, for browsers: residents' alert pages read `public/` topics here. */
export async function startWsListener(o: WsListenerOptions): Promise<Listener> {
  const admits = new Set(o.roles);
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end(`MQTT over WebSocket: connect to ${o.path} with the "mqtt" subprotocol\n`);
  });
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({
    server,
    path: o.path,
    // One MQTT packet per WebSocket message in practice; the frame guard still checks packets split over messages.
    maxPayload: o.maxPacketBytes,
    // Refuse an address before the upgrade is answered.
    verifyClient: ({ req }: { req: IncomingMessage }) => o.gate.admit(normalizeAddress(req.socket.remoteAddress), 'ws'),
  });
  wss.on('connection', (ws, req) => {
    sockets.add(ws);
    ws.once('close', () => sockets.delete(ws));
    const stream = createWebSocketStream(ws);
    stream.on('error', () => {}); // reported through the broker's connection
    o.gate.attach(stream, { listener: 'ws', address: normalizeAddress(req.socket.remoteAddress), admits });
  });
  const owned = ownSockets(server);
  await listen(server, o.port, o.host);
  const port = (server.address() as AddressInfo).port;
  return {
    name: 'ws',
    port,
    url: `ws://${connectHost(o.host)}:${port}${o.path}`,
    async close() {
      for (const ws of sockets) ws.terminate();
      const wssClosed = new Promise<void>((resolve) => wss.close(() => resolve()));
      await owned.close();
      await wssClosed;
    },
  };
}
