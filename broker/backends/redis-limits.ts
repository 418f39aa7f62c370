import type { Redis } from 'ioredis';
import type { Logger } from '../../core/logger.js';
import type { LoginLimits, LoginVerdict } from '../limits/login-limits.js';

export interface RedisLoginLimitsOptions {
  /** A connection of its own, failing fast while Redis is away (no offline queue): a login must not wait for Redis to come back. */
  redis: Redis;
  prefix: string;
  brokerId: string;
  /** Where the brokers' liveness keys are (`<alivePrefix><broker id>`, RedisPersistence's): connections of a broker whose key expired do not count. */
  alivePrefix: string;
  authFailures: number;
  failedIdentities: number;
  windowMs: number;
  /** This broker's own counts: what the cluster's limits fall back to while Redis is away. */
  local: LoginLimits;
  logger: Logger;
}

/**
 * One failed login from an address, for an identity: the address's hash of
 * identities and their failures, expiring one window after its first failure
 * (a fixed window, where one broker alone slides one). No more identities are
 * remembered once the address has failed for `failedIdentities`: it is refused
 * as a whole then, and the hash stays bounded.
 */
const FAILED = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

/**
 * Takes one of an identity's connections, atomically (two brokers admitting
 * the same identity at once cannot both take the last one). The identity's
 * hash has a field per broker and client id, counting that client's
 * connections there; a field of a broker whose liveness key is gone (killed,
 * or stopped) is dropped as it is met, so a dead broker's connections stop
 * counting once it is known dead. The same client id does not count: its new
 * connection takes the old one over [MQTT-3.1.4-2], wherever that one is.
 * Broker ids cannot contain "|" (config: Id).
 */
const ACQUIRE = `
local fields = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #fields, 2 do
  local f = fields[i]
  local sep = string.find(f, '|', 1, true)
  local broker = string.sub(f, 1, sep - 1)
  if broker ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. broker) == 0 then
    redis.call('HDEL', KEYS[1], f)
  elseif string.sub(f, sep + 1) ~= ARGV[2] then
    n = n + tonumber(fields[i + 1])
  end
end
if n >= tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 1)
return 1`;

const RELEASE = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`;

/**
 * The login limits of a cluster, counted in the Redis its brokers share, so
 * that ten wrong passwords spread over two brokers are ten, and an identity's
 * connections are counted over every broker.
 *
 * Redis unreachable: each broker falls back to its own counts (the address
 * guard counts every failure locally too) instead of refusing every login.
 * Refusing would turn a Redis outage into a login outage for every gateway
 * and fire department at once, with their alarms queued at the edge; the
 * local counts keep the limits in force, at worst as loose as one allowance
 * per broker, until Redis is back. A connection admitted on local counts is
 * not counted in Redis (its release is not sent there either); releases that
 * could not be sent are sent when Redis is back, so no identity keeps a
 * connection it no longer has.
 */
export class RedisLoginLimits implements LoginLimits {
  private readonly held = new Map<string, number>();
  private pending: [string, string][] = [];
  private failing = false;

  constructor(private readonly o: RedisLoginLimitsOptions) {
    o.redis.on('ready', () => this.flush());
  }

  async check(address: string, identity: string): Promise<LoginVerdict> {
    const mine = await this.o.local.check(address, identity);
    if (!mine.ok) return mine;
    try {
      const [[, failures], [, identities]] = (await this.o.redis.multi().hget(this.failedKey(address), identity).hlen(this.failedKey(address)).exec()) as [[null, string | null], [null, number]];
      this.reached();
      if (identities >= this.o.failedIdentities) return { ok: false, why: 'address', failures: Number(failures ?? 0) };
      if (Number(failures ?? 0) >= this.o.authFailures) return { ok: false, why: 'identity', failures: Number(failures) };
      return { ok: true };
    } catch (err) {
      this.unreachable(err);
      return mine;
    }
  }

  failed(address: string, identity: string): void {
    this.o.local.failed(address, identity);
    this.o.redis.eval(FAILED, 1, this.failedKey(address), identity, this.o.windowMs, this.o.failedIdentities).then(
      () => this.reached(),
      (err: unknown) => this.unreachable(err),
    );
  }

  async acquire(identityId: string, clientId: string, max: number): Promise<boolean> {
    try {
      const got = (await this.o.redis.eval(ACQUIRE, 1, this.connKey(identityId), this.o.brokerId, clientId, max, this.o.alivePrefix)) === 1;
      this.reached();
      if (got) this.held.set(this.heldKey(identityId, clientId), (this.held.get(this.heldKey(identityId, clientId)) ?? 0) + 1);
      return got;
    } catch (err) {
      this.unreachable(err);
      return this.o.local.acquire(identityId, clientId, max);
    }
  }

  release(identityId: string, clientId: string): void {
    const key = this.heldKey(identityId, clientId);
    const n = this.held.get(key) ?? 0;
    // Admitted on local counts while Redis was away: nothing to give back there.
    if (n === 0) return;
    if (n === 1) this.held.delete(key);
    else this.held.set(key, n - 1);
    this.send(identityId, clientId);
  }

  async close(): Promise<void> {
    this.o.redis.disconnect();
  }

  private send(identityId: string, clientId: string): void {
    this.o.redis.eval(RELEASE, 1, this.connKey(identityId), `${this.o.brokerId}|${clientId}`).then(
      () => this.reached(),
      (err: unknown) => {
        this.pending.push([identityId, clientId]);
        this.unreachable(err);
      },
    );
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = [];
    for (const [identityId, clientId] of pending) this.send(identityId, clientId);
  }

  private reached(): void {
    if (this.failing) this.o.logger.warn('login limits counted in the Redis of the cluster again');
    this.failing = false;
  }

  private unreachable(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.o.logger.error(
      { code: 'COSAFE_ERR_BROKER_CLUSTER', err: (err as Error).message },
      'cannot reach the Redis of the cluster for the login limits: this broker counts failed logins and connections on its own until it is back',
    );
  }

  private failedKey(address: string): string {
    return `${this.o.prefix}auth-failed:${address}`;
  }

  private connKey(identityId: string): string {
    return `${this.o.prefix}connections:${identityId}`;
  }

  private heldKey(identityId: string, clientId: string): string {
    return `${identityId}\n${clientId}`;
  }
}
