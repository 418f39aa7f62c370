import { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { redactUrl } from '../../core/redact-url.js';
import { planLeases } from './partition.js';

const PREFIX = 'cosafe:cloud-sync:';
/** The live workers: a sorted set, each worker's score the time its entry lapses unless renewed. */
const WORKERS = `${PREFIX}workers`;
/** Partitions whose broker sessions exist (their alarm session has subscribed once): see `provisioned`. */
const SESSIONS = `${PREFIX}sessions`;
const leaseKey = (k: number) => `${PREFIX}lease:${k}`;

/** Compare and set, in Redis: only the holder renews or deletes its lease (another may have it by now). */
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export interface PartitionLeasesDeps {
  redisUrl: string;
  count: number;
  ttlMs: number;
  workerId: string;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** This worker now holds partition `k`: connect its sessions. */
  acquire(k: number): Promise<void>;
  /** This worker no longer holds `k`: resolves once its sessions are closed (before the lease is given back). */
  release(k: number): Promise<void>;
}

type LossReason = 'taken' | 'unreachable' | 'rebalanced';

/**
 * Who consumes which partition's sessions: leases in the cluster's Redis
 * (`SET cosafe:cloud-sync:lease:<k> <worker> NX PX <ttl>`), renewed every
 * third of the ttl. A worker holds at most ceil(P / live workers) of them
 * (partition.ts), so they spread; a lease that lapses (its worker was
 * SIGKILLed) is claimed by a live worker, which connects that partition's
 * persistent sessions and receives everything the broker queued meanwhile.
 *
 * Never two consumers of one session: a lease found in another worker's name
 * is let go of at once (its sessions closed before anything else), and a
 * lease given up on purpose is deleted only after its sessions are closed.
 * MQTT would throw one of two clients with one id off anyway
 * [MQTT-3.1.4-2], but the one thrown off would reconnect and throw the other
 * off in turn; so a partition session that closes asks for a renewal at once
 * (`check`), and is ended rather than reconnected if the lease is gone.
 */
export class PartitionLeases {
  private readonly redis: Redis;
  private readonly held = new Map<number, { expiresAt: number }>();
  private readonly known = new Set<number>();
  private readonly toMark = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unreachable = false;
  private readonly tickMs: number;

  constructor(private readonly d: PartitionLeasesDeps) {
    this.tickMs = Math.max(100, Math.floor(d.ttlMs / 3));
    // No queue while Redis is away and an answer within a tick or a failure: a renewal that waits for
    // Redis to come back would hold on to leases that have lapsed meanwhile.
    this.redis = new Redis(d.redisUrl, { connectionName: `cosafe-cloud-sync:${d.workerId}`, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: this.tickMs });
    this.redis.on('error', () => {}); // reported by the renewals that fail (`unreachableNow`)
  }

  /** The partitions this worker holds now. */
  partitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Partition `k`'s sessions exist at the broker (made by any worker, once:
   * they are persistent). Until then an alarm-lane message of one of its
   * sites may be queued nowhere else, so every worker handles it as if its
   * own (at least once, never lost); from then on only `k`'s holder does.
   */
  provisioned(k: number): boolean {
    return this.known.has(k);
  }

  /** `k`'s alarm session has subscribed: record that its sessions exist (in Redis at the next renewal). */
  markProvisioned(k: number): void {
    if (this.known.has(k)) return;
    this.toMark.add(k);
    this.check();
  }

  async start(): Promise<void> {
    await this.redis.connect().catch((err: Error) => {
      // Not fatal: the worker starts holding nothing and claims once Redis answers (the broker queues meanwhile).
      this.d.logger.error({ code: 'COSAFE_ERR_PARTITION_LEASE', redis: redactUrl(this.d.redisUrl), err: err.message }, 'cloud-sync cannot reach the Redis of its partition leases; it holds no partition until it can');
      this.unreachable = true;
    });
    await this.tickNow();
  }

  /** Renews and claims now (after a partition session closed: has another worker taken it?). */
  check(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    void this.tickNow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    // Given back at once, so the others take over without waiting for the ttl; sessions first.
    for (const k of this.partitions()) {
      await this.d.release(k).catch((err: Error) => this.d.logger.error({ partition: k, err: err.message }, 'error while closing a partition'));
      this.held.delete(k);
      await this.redis.eval(RELEASE, 1, leaseKey(k), this.d.workerId).catch(() => 0);
    }
    await this.redis.zrem(WORKERS, this.d.workerId).catch(() => 0);
    this.d.metrics.set('cosafe_sync_partitions_held', {}, 0);
    this.redis.disconnect();
  }

  private async tickNow(): Promise<void> {
    this.running = this.tick()
      .catch((err: Error) => this.d.logger.error({ code: 'COSAFE_ERR_PARTITION_LEASE', err: err.message }, 'error while renewing the partition leases'))
      .finally(() => {
        this.running = undefined;
        this.d.metrics.set('cosafe_sync_partitions_held', {}, this.held.size);
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          return void this.tickNow();
        }
        this.timer = setTimeout(() => void this.tickNow(), this.nextDelay());
      });
    return this.running;
  }

  /** A third of the ttl; sooner when Redis is away and a lease is about to lapse (then it is let go of in time). */
  private nextDelay(): number {
    if (!this.unreachable || this.held.size === 0) return this.tickMs;
    const soonest = Math.min(...[...this.held.values()].map((h) => h.expiresAt));
    return Math.max(0, Math.min(this.tickMs, soonest - this.margin() - this.d.clock.now()));
  }

  /** Let go this long before a lease would lapse: closing the sessions takes a moment, and the next holder may be quick. */
  private margin(): number {
    return Math.floor(this.tickMs / 2);
  }

  private async tick(): Promise<void> {
    const { count, ttlMs, workerId: me } = this.d;
    const started = this.d.clock.now();
    const keys = Array.from({ length: count }, (_, k) => leaseKey(k));
    let live: number;
    let holders: (string | undefined)[];
    try {
      const tx = this.redis.multi().zadd(WORKERS, started + ttlMs, me).zremrangebyscore(WORKERS, '-inf', started).zcard(WORKERS).mget(...keys);
      if (this.toMark.size) tx.sadd(SESSIONS, ...this.toMark);
      tx.smembers(SESSIONS);
      const r = await tx.exec();
      const failed = r?.find(([err]) => err);
      if (!r || failed) throw failed?.[0] ?? new Error('transaction aborted');
      live = r[2]![1] as number;
      holders = (r[3]![1] as (string | null)[]).map((h) => h ?? undefined);
      for (const k of this.toMark) this.known.add(k);
      this.toMark.clear();
      for (const k of r[r.length - 1]![1] as string[]) this.known.add(Number(k));
    } catch (err) {
      return this.unreachableNow(err as Error);
    }
    if (this.unreachable) this.d.logger.warn({ redis: redactUrl(this.d.redisUrl) }, 'cloud-sync reached the Redis of its partition leases again');
    this.unreachable = false;

    for (const [k, lease] of [...this.held]) {
      const holder = holders[k];
      // Renewed only if still ours; one that lapsed while nobody took it (a long pause) is taken back.
      const ok = holder === me ? (await this.redis.eval(RENEW, 1, keys[k]!, me, ttlMs)) === 1 : holder === undefined && (await this.redis.set(keys[k]!, me, 'PX', ttlMs, 'NX')) === 'OK';
      if (ok) {
        lease.expiresAt = started + ttlMs;
        holders[k] = me;
        continue;
      }
      holders[k] = holder ?? (await this.redis.get(keys[k]!)) ?? undefined;
      this.d.logger.warn({ code: 'COSAFE_ERR_PARTITION_LEASE', partition: k, holder: holders[k] }, 'another cloud-sync worker holds this partition now; closing its sessions');
      await this.lose(k, 'taken');
    }

    const plan = planLeases({ count, liveWorkers: live, holders, me });
    for (const k of plan.release) {
      await this.lose(k, 'rebalanced');
      await this.redis.eval(RELEASE, 1, keys[k]!, me);
      this.d.logger.info({ partition: k, liveWorkers: live }, 'gave a partition up so the partitions spread over the live workers');
    }
    for (const k of plan.claim) {
      if (this.stopped) return;
      if ((await this.redis.set(keys[k]!, me, 'PX', ttlMs, 'NX')) !== 'OK') continue; // another worker was quicker
      this.held.set(k, { expiresAt: started + ttlMs });
      this.d.metrics.inc('cosafe_sync_partition_lease_claims_total');
      this.d.logger.info({ partition: k, liveWorkers: live }, 'claimed a partition: connecting its sessions');
      await this.d.acquire(k);
    }
  }

  /**
   * Redis does not answer. What this worker holds stays with it until the
   * lease would lapse in Redis (counted from before the last renewal was sent,
   * so never later than Redis' own count): until then no other worker can
   * claim it, so going on loses nothing and keeps alarms flowing through a
   * short Redis outage; past it another worker may hold the lease, and two
   * consumers of one session would throw each other off.
   */
  private async unreachableNow(err: Error): Promise<void> {
    this.d.metrics.inc('cosafe_sync_partition_lease_errors_total');
    if (!this.unreachable) this.d.logger.error({ code: 'COSAFE_ERR_PARTITION_LEASE', redis: redactUrl(this.d.redisUrl), err: err.message, partitions: this.partitions() }, 'cloud-sync cannot renew its partition leases; keeping them until they would lapse');
    this.unreachable = true;
    const now = this.d.clock.now();
    for (const [k, lease] of [...this.held]) {
      if (now < lease.expiresAt - this.margin()) continue;
      this.d.logger.warn({ code: 'COSAFE_ERR_PARTITION_LEASE', partition: k }, 'partition lease lapses while Redis is unreachable; closing its sessions (another worker may take it)');
      await this.lose(k, 'unreachable');
    }
  }

  private async lose(k: number, reason: LossReason): Promise<void> {
    this.held.delete(k);
    this.d.metrics.inc('cosafe_sync_partition_lease_losses_total', { reason });
    await this.d.release(k);
  }
}
