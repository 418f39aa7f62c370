import type { Server, Socket } from 'node:net';

/** Listens, or rejects with the listen error (EADDRINUSE, EACCES) for the caller to explain. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Every socket the server accepts, from the first byte: so that closing ends
 * them all, including those still in a TLS handshake or that never sent
 * CONNECT (server.close() alone would wait for each of them).
 */
export function ownSockets(server: Server): { close(): Promise<void> } {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      return closed;
    },
  };
}
