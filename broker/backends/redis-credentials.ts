import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { sameCredentialRow, toCredential, mergeCredentialRows, type CredentialRow, type CredentialStore } from '../auth/credential-store.js';

/** A row as another broker wrote it into Redis: checked before it is taken in (Redis is shared; a bad row must not stop a login). */
const ReplicaRow = z
  .object({
    id: z.string(),
    role: z.string(),
    site: z.string().nullable(),
    gateway: z.string().nullable(),
    device: z.string().nullable(),
    district: z.string().nullable(),
    topic: z.string().nullable(),
    prefix: z.string().nullable(),
    sites: z.string().nullable(),
    secret_hash: z.string(),
    generation: z.number().int(),
    created_at: z.number(),
    rotated_at: z.number().nullable(),
    revoked_at: z.number().nullable(),
  })
  .strip();

/** Sets the row only if it is still what was read (compare and set), and tells every broker which id changed. */
const SWAP = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1`;

export interface CredentialReplicaOptions {
  /** Commands (fails fast while Redis is away: the replica catches up when it is back). */
  redis: Redis;
  /** A subscriber connection of its own. */
  sub: Redis;
  prefix: string;
  store: CredentialStore;
  logger: Logger;
  metrics: Metrics;
  /** The store changed here because of another broker: recheck the live sessions (end the revoked and rotated ones). */
  onChange: () => void;
}

/**
 * How the brokers of a cluster share one credential store. Each broker keeps
 * its SQLite file (`<dataDir>/credentials.db`), which every login reads (so a
 * login never waits for Redis, and keeps working on the last known store while
 * Redis is away); Redis holds the cluster's copy of every row
 * (`<prefix>credentials`, a hash by id) and a channel announcing each change.
 *
 * - `cosafe credentials add|rotate|revoke` against any broker's data directory
 *   writes that broker's file; the broker notices within `revocationCheckMs`
 *   (RevocationWatcher) and pushes the changed rows to Redis, and every other
 *   broker takes them into its own file at once and ends the sessions a
 *   revocation or rotation ended, as one broker does alone.
 * - Rows are merged, never overwritten (mergeCredentialRows: a revocation is
 *   final, a later rotation wins), with a compare-and-set in Redis, so two
 *   brokers changing one credential at once end with the same row.
 * - A broker that starts, or whose subscription was lost (Redis restarted),
 *   reads every row again and pushes what it has that Redis lacks: a change
 *   made while it was away is not missed.
 */
export class CredentialReplica {
  private readonly key: string;
  private readonly channel: string;
  /** What this broker last agreed with Redis, by id: a local change is what differs from it. */
  private readonly known = new Map<string, CredentialRow>();
  private failing = false;
  private stopped = false;

  constructor(private readonly o: CredentialReplicaOptions) {
    this.key = `${o.prefix}credentials`;
    this.channel = `${o.prefix}credentials:changed`;
  }

  async start(): Promise<void> {
    this.o.sub.on('message', (channel: string, id: string) => {
      if (channel === this.channel) void this.pull(id);
    });
    // After a lost connection ioredis subscribes again by itself; what was announced meanwhile is read whole.
    let first = true;
    this.o.sub.on('ready', () => {
      if (first) return;
      void this.resync();
    });
    await this.o.sub.subscribe(this.channel);
    first = false;
    this.o.redis.on('ready', () => void this.localChanged());
    await this.resync();
  }

  stop(): void {
    this.stopped = true;
    this.o.sub.disconnect();
  }

  /** This broker's file was changed by another connection (the CLI): push what differs from Redis. */
  async localChanged(): Promise<void> {
    try {
      for (const row of this.o.store.rows()) {
        const known = this.known.get(row.id);
        if (!known || !sameCredentialRow(known, row)) await this.push(row);
      }
      this.reached();
    } catch (err) {
      this.unreachable(err);
    }
  }

  private async resync(): Promise<void> {
    try {
      let changed = false;
      for (const [id, text] of Object.entries(await this.o.redis.hgetall(this.key))) changed = this.takeIn(id, text) || changed;
      if (changed) this.o.onChange();
      this.reached();
    } catch (err) {
      this.unreachable(err);
    }
    await this.localChanged();
  }

  private async pull(id: string): Promise<void> {
    try {
      const text = await this.o.redis.hget(this.key, id);
      this.reached();
      if (text !== null && this.takeIn(id, text)) this.o.onChange();
    } catch (err) {
      this.unreachable(err);
    }
  }

  /** Merges Redis' copy into the file here; true when a login or session depends on the change. */
  private takeIn(id: string, text: string): boolean {
    let theirs: CredentialRow;
    try {
      theirs = ReplicaRow.parse(JSON.parse(text));
      if (theirs.id !== id) throw new Error(`the row is filed under "${id}" but is "${theirs.id}"`);
      toCredential(theirs);
    } catch (err) {
      this.o.metrics.inc('cosafe_broker_cluster_credentials_refused_total');
      this.o.logger.error({ code: 'COSAFE_ERR_CREDENTIALS_STORE', id: id.slice(0, 128), err: (err as Error).message }, `a credential row in the Redis of the cluster (${this.key}) is not valid: ignored`);
      return false;
    }
    const mine = this.o.store.rawRow(id);
    if (mine && mine.created_at !== theirs.created_at && mine.generation === theirs.generation) {
      this.o.logger.error({ code: 'COSAFE_ERR_CREDENTIALS_CONFLICT', id }, `identity "${id}" was issued on two brokers separately: one of the two secrets stands (the same on every broker); issue credentials on one broker`);
    }
    const { row, changed } = this.o.store.mergeRow(theirs);
    this.known.set(id, row);
    // This broker had something newer (a change not pushed yet): Redis gets it too.
    if (!sameCredentialRow(row, theirs)) void this.push(row).catch((err: unknown) => this.unreachable(err));
    return changed;
  }

  private async push(row: CredentialRow): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const text = await this.o.redis.hget(this.key, row.id);
      const theirs = text === null ? undefined : ReplicaRow.safeParse(JSON.parse(text)).data;
      const merged = theirs ? mergeCredentialRows(theirs, row) : row;
      const agreed = (theirs && sameCredentialRow(theirs, merged)) || (await this.o.redis.eval(SWAP, 2, this.key, this.channel, row.id, text ?? '', JSON.stringify(merged))) === 1;
      if (agreed) {
        // Redis may have known more (a revocation made on another broker): taken in here too.
        const here = this.o.store.mergeRow(merged);
        this.known.set(row.id, here.row);
        if (here.changed) this.o.onChange();
        return;
      }
      // Another broker changed it meanwhile: merge with that and try again.
    }
  }

  private reached(): void {
    if (this.failing) this.o.logger.warn('credential store in step with the Redis of the cluster again');
    this.failing = false;
  }

  private unreachable(err: unknown): void {
    if (this.failing || this.stopped) return;
    this.failing = true;
    this.o.logger.error(
      { code: 'COSAFE_ERR_BROKER_CLUSTER', err: (err as Error).message },
      'cannot reach the Redis of the cluster for the credential store: this broker serves its own copy, and changes made here or on other brokers meet once Redis is back',
    );
  }
}
