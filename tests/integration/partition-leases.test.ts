import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLeases } from '../../cloud-sync/partitions/partition-leases.js';
import { systemClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { waitUntil } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

/**
 * The partition leases (cloud-sync/partitions/partition-leases.ts) on a real
 * redis-server: how workers spread, give up and take over partitions, and
 * what a worker does when another holds its lease or Redis does not answer.
 * What a partition's sessions do is in tests/e2e/cloud-sync-workers.test.ts;
 * here `acquire` and `release` only record who consumes what, so the one rule
 * that matters is checked at every step: never two consumers of a partition.
 */
const COUNT = 4;
const TTL_MS = 900;
let redis: RedisServer | undefined;
const workers: PartitionLeases[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await redis?.stop();
  redis = undefined;
});

/** Who consumes each partition now (by `acquire` and `release`), and every time two did at once. */
class Consumers {
  readonly of = new Map<number, string>();
  readonly overlaps: string[] = [];
  readonly releases: string[] = [];

  worker(id: string, metrics = new Metrics()): { leases: PartitionLeases; metrics: Metrics } {
    const leases = new PartitionLeases({
      redisUrl: redis!.url,
      count: COUNT,
      ttlMs: TTL_MS,
      workerId: id,
      logger: silentLogger,
      metrics,
      clock: systemClock,
      acquire: async (k) => {
        const other = this.of.get(k);
        if (other !== undefined) this.overlaps.push(`${id} acquired ${k} while ${other} consumed it`);
        this.of.set(k, id);
      },
      release: async (k) => {
        if (this.of.get(k) === id) this.of.delete(k);
        this.releases.push(`${id}:${k}`);
      },
    });
    workers.push(leases);
    return { leases, metrics };
  }

  held(id: string): number {
    return [...this.of.values()].filter((w) => w === id).length;
  }
}

describe('partition leases in Redis', () => {
  it('a lone worker takes every partition, a second one gets half, and a stopped one gives its back at once', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    const c = new Consumers();
    const a = c.worker('a');
    await a.leases.start();
    expect(a.leases.partitions()).toEqual([0, 1, 2, 3]);
    expect(a.metrics.get('cosafe_sync_partitions_held')).toBe(COUNT);
    const b = c.worker('b');
    await b.leases.start();
    await waitUntil('two partitions each', () => c.held('a') === 2 && c.held('b') === 2, 30_000);
    expect(a.metrics.get('cosafe_sync_partition_lease_losses_total', { reason: 'rebalanced' })).toBe(2);
    expect(b.metrics.get('cosafe_sync_partition_lease_claims_total')).toBe(2);
    // Stopped (SIGTERM): its leases are deleted, so the other takes them without waiting for the ttl to pass.
    await b.leases.stop();
    expect(await redis.client.mget('cosafe:cloud-sync:lease:0', 'cosafe:cloud-sync:lease:1', 'cosafe:cloud-sync:lease:2', 'cosafe:cloud-sync:lease:3')).not.toContain('b');
    await waitUntil('a holding all four again', () => c.held('a') === COUNT, 30_000);
    expect(c.overlaps).toEqual([]);
  });

  it('a worker whose lease another holds lets that partition go at once, and only that one', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    const c = new Consumers();
    const a = c.worker('a');
    await a.leases.start();
    // Another worker took partition 2 (as after a pause of this one longer than the ttl).
    await redis.client.set('cosafe:cloud-sync:lease:2', 'intruder', 'PX', 60_000);
    await waitUntil('a letting partition 2 go', () => !a.leases.partitions().includes(2), 30_000);
    expect(c.releases).toEqual(['a:2']);
    expect(a.leases.partitions()).toEqual([0, 1, 3]);
    expect(a.metrics.get('cosafe_sync_partition_lease_losses_total', { reason: 'taken' })).toBe(1);
    expect(await redis.client.get('cosafe:cloud-sync:lease:2')).toBe('intruder');
  });

  it('while Redis does not answer, a worker lets its partitions go once their leases would have lapsed, and claims them again when Redis is back', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    const c = new Consumers();
    const a = c.worker('a');
    await a.leases.start();
    expect(c.held('a')).toBe(COUNT);
    await redis.kill();
    await waitUntil('a failing to renew', () => a.metrics.get('cosafe_sync_partition_lease_errors_total') > 0, 30_000);
    // Then, once the leases would have lapsed in Redis, nothing is consumed any more.
    await waitUntil('a letting every partition go', () => c.held('a') === 0, 30_000);
    expect(a.metrics.get('cosafe_sync_partition_lease_losses_total', { reason: 'unreachable' })).toBe(COUNT);
    expect(a.metrics.get('cosafe_sync_partitions_held')).toBe(0);
    await redis.restart();
    await waitUntil('a claiming them again', () => c.held('a') === COUNT, 30_000);
    expect(c.overlaps).toEqual([]);
  });

  it('a worker started while Redis is down holds nothing, and claims its partitions once Redis answers', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    await redis.kill();
    const c = new Consumers();
    const a = c.worker('a');
    await a.leases.start();
    expect(a.leases.partitions()).toEqual([]);
    await redis.restart();
    await waitUntil('a claiming every partition', () => c.held('a') === COUNT, 60_000);
  });
});
