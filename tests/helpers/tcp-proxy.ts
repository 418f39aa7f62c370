import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback between a client and a server, to break the network
 * between them the ways real networks break:
 * - `cut()`: every connection is reset, as when a switch reboots; the server
 *   notices too, but keeps its sessions.
 * - `blackhole()`: connections stay open but nothing passes, as when a cable is
 *   pulled or a router dies: neither side is told (a half-open connection).
 * - `down()`: the server is unreachable: connections are reset and new ones are
 *   refused, as when the link to another building is down.
 * - `heal()`: traffic flows again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private dropping = false;
  private refusing = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.refusing) return client.destroy();
      const upstream = connect(this.targetPort, this.targetHost);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const forward = (from: Socket, to: Socket) =>
        from.on('data', (chunk: Buffer) => {
          if (!this.dropping) to.write(chunk);
        });
      forward(client, upstream);
      forward(upstream, client);
      const close = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  cut(): void {
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
  }

  blackhole(): void {
    this.dropping = true;
  }

  down(): void {
    this.refusing = true;
    this.cut();
  }

  /** Traffic flows again. Connections that lost bytes in the black hole are reset: their streams are broken anyway. */
  heal(): void {
    if (this.dropping) this.cut();
    this.dropping = false;
    this.refusing = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

/** A link that can go down (connections reset, new ones refused) and come back. */
export interface TcpLink {
  port: number;
  cut(): void;
  restore(): void;
  stop(): Promise<void>;
}

/** A started proxy to `targetPort` on loopback, with the down/restore view the store-and-forward tests use. */
export async function startTcpProxy(targetPort: number): Promise<TcpLink> {
  const proxy = new TcpProxy('127.0.0.1', targetPort);
  await proxy.start();
  return { port: proxy.port, cut: () => proxy.down(), restore: () => proxy.heal(), stop: () => proxy.stop() };
}
