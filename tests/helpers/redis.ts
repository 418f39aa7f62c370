import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, requireBinary, spawnLogged, waitUntil, type Spawned } from './processes.js';

export interface RedisServer {
  url: string;
  port: number;
  /** A client of its own (closed by `stop`), for what a test checks in Redis. */
  client: Redis;
  /** SIGKILL: what the append-only file holds is all that comes back. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (after `kill`). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** `appendfsync`: always (default here: every acknowledged write is on the disk), everysec, or no AOF at all ('off'). */
  appendfsync?: 'always' | 'everysec' | 'off';
}

/**
 * A real Redis (Debian package `redis-server`) on a temporary directory and a
 * free loopback port, with its append-only file on, ready when it answers PING.
 */
export async function startRedis(o: RedisOptions = {}): Promise<RedisServer> {
  const bin = requireBinary('redis-server', 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-redis-'));
  const port = await freePort();
  const fsync = o.appendfsync ?? 'always';
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', fsync === 'off' ? 'no' : 'yes',
    ...(fsync === 'off' ? [] : ['--appendfsync', fsync]),
    '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning',
  ];
  const url = `redis://127.0.0.1:${port}`;
  let proc: Spawned | undefined;
  const launch = async () => {
    proc = spawnLogged(bin, args);
    const p = proc;
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }).on('error', () => {});
    try {
      await waitUntil(`redis-server to answer PING on ${url}`, async () => {
        if (p.child.exitCode !== null) throw new Error(`redis-server exited with ${p.child.exitCode}: ${p.output().slice(-2000)}`);
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        // LOADING while it replays the append-only file.
        return (await probe.ping().catch(() => '')) === 'PONG';
      }, 30_000, 50);
    } finally {
      probe.disconnect();
    }
  };
  await launch();
  // Refused while the server is killed and restarted: ioredis retries.
  const client = new Redis(url, { maxRetriesPerRequest: null }).on('error', () => {});
  return {
    url,
    port,
    client,
    async kill() {
      await proc?.stop('SIGKILL');
    },
    async restart() {
      await launch();
    },
    async stop() {
      client.disconnect();
      await proc?.stop('SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
