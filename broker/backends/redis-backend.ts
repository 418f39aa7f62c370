import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { EventEmitter } from 'node:events';
import MQEmitterRedis from 'mqemitter-redis';
import type { Config } from '../../core/config.js';
import { CosafeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { redactUrl } from '../../core/redact-url.js';
import type { BrokerBackend } from './backend.js';
import { CredentialReplica } from './redis-credentials.js';
import { RedisLoginLimits } from './redis-limits.js';
import { RedisPersistence } from './redis-persistence.js';

export type ClusterConfig = NonNullable<Config['broker']['cluster']>;

/** Keys cosafe itself keeps in Redis start with this (aedes-persistence-redis has its own fixed names: one Redis database per cluster). */
const PREFIX = 'cosafe:';

/**
 * A broker of a cluster: its persistence in the Redis every broker shares
 * (RedisPersistence), messages routed between brokers over Redis pub/sub
 * (mqemitter-redis), so a client connected to any broker reaches subscribers
 * on every other one.
 *
 * Redis unreachable at start: the broker does not start (it would accept
 * messages it cannot keep). Lost while running: ioredis reconnects with its
 * own backoff; a QoS 1 PUBLISH that cannot be journaled is not acknowledged
 * (the sender keeps it in its outbox and sends it again), so nothing is
 * acknowledged that is not in Redis.
 */
export async function redisBackend(cluster: ClusterConfig, logger: Logger): Promise<BrokerBackend> {
  const brokerId = cluster.brokerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const where = redactUrl(cluster.redisUrl);
  let warned = false;
  // `fast`: no queue while Redis is away, a command answered within 2 s or failed; for what a login waits on
  // (its limits), which must fall back at once rather than wait for Redis to come back.
  const connection = (role: string, fast = false) => {
    const redis = new Redis(cluster.redisUrl, {
      connectionName: `cosafe-broker:${brokerId}:${role}`,
      lazyConnect: true,
      ...(fast ? { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 } : {}),
    });
    redis.on('error', (err: Error) => {
      if (warned) return;
      warned = true;
      logger.error({ code: 'COSAFE_ERR_BROKER_CLUSTER', redis: where, err: err.message }, 'broker lost the Redis of its cluster: QoS 1 messages are refused (their senders keep them) until it is back');
    });
    redis.on('ready', () => {
      if (warned) logger.warn({ redis: where }, 'broker reached the Redis of its cluster again');
      warned = false;
    });
    return redis;
  };
  const db = connection('persistence');
  try {
    await db.connect();
    const fsync = await db.config('GET', 'append*').catch(() => [] as string[]);
    const settings = Object.fromEntries(chunk(fsync as string[]));
    if (settings.appendonly === 'no') {
      logger.warn({ code: 'COSAFE_ERR_BROKER_CLUSTER', redis: where }, 'the Redis of this cluster runs without its append-only file: what the brokers acknowledged is lost if Redis crashes (set appendonly yes, appendfsync always or everysec)');
    }
  } catch (err) {
    db.disconnect();
    throw new CosafeError('COSAFE_ERR_BROKER_CLUSTER', `broker.cluster.redisUrl: cannot reach Redis at ${where}: ${(err as Error).message}`, { cause: err });
  }
  // A persistent session gets its whole queue when it connects: aedes-persistence-redis hands over at most
  // maxSessionDelivery + 1 queued messages per CONNECT (LRANGE 0..n) and leaves the rest in Redis until the
  // next one, which may never come. -1 is LRANGE 0..-1, all of them (as the embedded backend does).
  const persistence = new RedisPersistence({ redis: db, prefix: PREFIX, livenessMs: cluster.livenessMs, maxSessionDelivery: -1 });
  const pub = connection('pub');
  const sub = connection('sub');
  const mq = MQEmitterRedis({ pubConn: pub, subConn: sub });
  // mqemitter-redis re-emits its connections' errors on an emitter of its own, `state`, which has no listener:
  // Redis going away then threw an uncaught "connect ECONNREFUSED" out of ioredis, which ends a broker process.
  // The connections' own handlers above log the outage once.
  (mq as unknown as { state: EventEmitter }).state.on('error', () => {});
  const logins = connection('logins', true);
  const credentialsSub = connection('credentials');
  await Promise.all([logins.connect(), credentialsSub.connect()]).catch((err: unknown) => {
    for (const r of [db, pub, sub, logins, credentialsSub]) r.disconnect();
    throw new CosafeError('COSAFE_ERR_BROKER_CLUSTER', `broker.cluster.redisUrl: cannot reach Redis at ${where}: ${(err as Error).message}`, { cause: err });
  });
  let replica: CredentialReplica | undefined;
  return {
    kind: 'redis',
    persistence,
    mq,
    brokerId,
    heartbeatMs: cluster.heartbeatMs,
    journal: persistence,
    loginLimits: (local, limits) =>
      new RedisLoginLimits({
        redis: logins,
        prefix: PREFIX,
        brokerId,
        alivePrefix: `${PREFIX}alive:`,
        authFailures: limits.authFailuresPerMinute,
        failedIdentities: limits.authFailedIdentitiesPerMinute,
        windowMs: 60_000,
        local,
        logger,
      }),
    shareCredentials: async ({ store, metrics, onChange }) => {
      replica = new CredentialReplica({ redis: logins, sub: credentialsSub, prefix: PREFIX, store, logger, metrics, onChange });
      await replica.start();
      return replica;
    },
    close: async () => {
      replica?.stop();
      credentialsSub.disconnect();
      logins.disconnect();
      // Aedes closes the mq itself (aedes.close); the persistence closes its connection.
      await persistence.destroy().catch(() => {});
    },
  };
}

function chunk(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
