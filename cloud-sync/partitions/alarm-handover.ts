import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { Backoff } from '../../core/backoff.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { redactUrl } from '../../core/redact-url.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { planTakeover, type AlarmCopy, type CopyVersion, type LocalCopyState } from '../alarms/alarm-copy.js';
import type { AckRequest, AlarmLifecycle } from '../alarms/alarm-lifecycle.js';
import type { AlarmRecord, AlarmStore } from '../alarms/alarm-store.js';
import type { Principal } from '../http/permissions.js';
import type { PartitionOwnership } from './partition-ownership.js';

const PREFIX = 'cosafe:cloud-sync:';
const leaseKey = (k: number) => `${PREFIX}lease:${k}`;
/** Each partition's alarms: field = alarm id, value = the AlarmCopy (JSON). */
export const copiesKey = (k: number) => `${PREFIX}alarms:p${k}`;
/** Incremented at each claim of the partition: the epoch of the new holder's writes. */
export const epochKey = (k: number) => `${PREFIX}alarms:p${k}:epoch`;
/** HTTP acknowledgements another worker took for an alarm of the partition, for its holder (a list, oldest first). */
export const acksKey = (k: number) => `${PREFIX}acks:p${k}`;
/** MQTT acknowledgements no worker could place when they came (a takeover in progress): field = digest. */
export const UNPLACED_ACKS = `${PREFIX}acks:unplaced`;
/** How long an unplaced MQTT acknowledgement is offered to the next holder. */
const UNPLACED_KEPT_MS = 10 * 60_000;
/** How often the holder looks for acknowledgements relayed by other workers. */
const RELAY_POLL_MS = 500;

/**
 * Fenced and ordered, in Redis: only the holder of the partition's lease
 * writes (a worker that comes back after a takeover is refused, -1), and only
 * a newer version replaces a copy (a retried write never undoes a later one, 0).
 */
const WRITE = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = redis.call('hget', KEYS[2], ARGV[2])
if cur then
  local v = cjson.decode(cur).version
  local e, s = tonumber(ARGV[3]), tonumber(ARGV[4])
  if v.epoch > e or (v.epoch == e and v.seq >= s) then return 0 end
end
redis.call('hset', KEYS[2], ARGV[2], ARGV[5])
return 1`;

export interface AlarmHandoverDeps {
  redisUrl: string;
  workerId: string;
  ownership: PartitionOwnership;
  lifecycle: AlarmLifecycle;
  store: AlarmStore;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

/** An HTTP acknowledgement taken by a worker that does not hold the alarm's partition, for the holder. */
interface RelayedAck {
  alarmId: string;
  who: Principal;
  operator?: string;
  note?: string;
  eventId?: string;
  warnPublic?: boolean;
  via: string;
  at: number;
}

/**
 * The alarm state of each partition, shared in the cluster's Redis so that it
 * moves with the partition (README "Cloud-sync workers"): after every durable
 * change of an alarm of a partition it holds, the worker writes the alarm's
 * copy (record, events, messages, unconfirmed deliveries, journal tail) to
 * `cosafe:cloud-sync:alarms:p<k>`, retried while Redis is away (the local
 * dispatch.db stays the source of truth while the partition is held). On
 * taking a partition, before its sessions are consumed, the worker imports
 * the copies newer than its own state and re-arms their escalation; on giving
 * it up, it stops their timers.
 */
export class AlarmHandover {
  private readonly redis: Redis;
  /** The epoch of each partition held, and the last sequence number written in it. */
  private readonly epochs = new Map<number, CopyVersion>();
  private readonly queue = new Set<string>();
  /** Partitions taken while Redis did not answer: held with the local state, synced as soon as it answers. */
  private readonly unsynced = new Set<number>();
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private relayTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly backoff = new Backoff({ baseMs: 250, capMs: 5000 });
  private readonly throttled: ThrottledLog;
  private stopped = false;

  constructor(private readonly d: AlarmHandoverDeps) {
    this.throttled = new ThrottledLog(d.logger, d.clock);
    this.redis = new Redis(d.redisUrl, { connectionName: `cosafe-cloud-sync-alarms:${d.workerId}`, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 3000 });
    this.redis.on('error', () => {}); // reported by the writes that fail
  }

  async start(): Promise<void> {
    await this.redis.connect().catch((err: Error) => this.failed('connect', err));
    this.unsubscribe = this.d.lifecycle.observeChanges((a) => this.changed(a));
    this.relayTimer = setInterval(() => void this.takeRelayedAcks(), RELAY_POLL_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearInterval(this.relayTimer);
    clearTimeout(this.retryTimer);
    await this.flushing;
    this.redis.disconnect();
  }

  /**
   * This worker now holds `k` (called before its sessions connect). The
   * copies are read first; then, in one synchronous step (no event of the
   * partition, timer or acknowledgement in between), the partition counts as
   * held, the newer copies are imported, and its timers are armed.
   */
  async acquire(k: number): Promise<void> {
    let loaded: { epoch: number; copies: Map<string, AlarmCopy> } | undefined;
    try {
      loaded = await this.load(k);
    } catch (err) {
      this.failed('load', err as Error, k);
    }
    this.d.ownership.add(k);
    if (!loaded) {
      // Escalation goes on from the local state meanwhile: never silent because Redis is.
      this.unsynced.add(k);
      this.d.lifecycle.armWhere((site) => this.d.ownership.partitionOf(site) === k);
      this.retryLater();
      return;
    }
    this.takeOver(k, loaded.epoch, loaded.copies);
    this.d.lifecycle.armWhere((site) => this.d.ownership.partitionOf(site) === k);
    await this.replayUnplaced(k);
    await this.takeRelayedAcks();
  }

  /** `k` goes to another worker: what is queued for it is written while the lease is still ours, then its timers stop here. */
  async release(k: number): Promise<void> {
    await this.flush();
    this.d.ownership.delete(k);
    this.epochs.delete(k);
    this.unsynced.delete(k);
    this.d.lifecycle.disarmWhere((site) => this.d.ownership.partitionOf(site) === k);
  }

  /**
   * An MQTT acknowledgement this worker could not apply (not its alarm, or
   * not one it knows): kept for a while in Redis, so that the worker that
   * takes the alarm's partition over applies it if it came while nobody held it.
   */
  stashAck(topic: string, payload: Buffer): void {
    const digest = createHash('sha256').update(topic).update('\u0000').update(payload).digest('hex').slice(0, 32);
    this.redis.hset(UNPLACED_ACKS, digest, JSON.stringify({ topic, payload: payload.toString('base64'), at: this.d.clock.now() })).catch((err: Error) => this.failed('stash', err));
  }

  /** The shared copy of an alarm, wherever its partition is (for a worker that does not hold it). */
  async find(alarmId: string): Promise<{ partition: number; copy: AlarmCopy } | undefined> {
    const tx = this.redis.pipeline();
    for (let k = 0; k < this.d.ownership.count; k++) tx.hget(copiesKey(k), alarmId);
    const r = (await tx.exec()) ?? [];
    for (let k = 0; k < r.length; k++) {
      const [err, v] = r[k]!;
      if (err) throw err;
      if (typeof v === 'string') return { partition: k, copy: JSON.parse(v) as AlarmCopy };
    }
    return undefined;
  }

  /** Hands an HTTP acknowledgement to the holder of the alarm's partition (it applies it within a second); resolves with who holds it now. */
  async relayAck(partition: number, req: AckRequest & { alarmId: string }): Promise<{ holder: string | null }> {
    const relayed: RelayedAck = {
      alarmId: req.alarmId,
      who: req.who,
      via: this.d.workerId,
      at: this.d.clock.now(),
      ...(req.operator ? { operator: req.operator } : {}),
      ...(req.note ? { note: req.note } : {}),
      ...(req.eventId ? { eventId: req.eventId } : {}),
      ...(req.warnPublic !== undefined ? { warnPublic: req.warnPublic } : {}),
    };
    const r = await this.redis.multi().rpush(acksKey(partition), JSON.stringify(relayed)).get(leaseKey(partition)).exec();
    const failed = r?.find(([err]) => err);
    if (!r || failed) throw failed?.[0] ?? new Error('transaction aborted');
    this.d.metrics.inc('cosafe_sync_alarm_acks_relayed_total');
    return { holder: (r[1]![1] as string | null) ?? null };
  }

  health(): Record<string, unknown> {
    return { alarmStateQueued: this.queue.size, alarmStateUnsynced: [...this.unsynced] };
  }

  private async load(k: number): Promise<{ epoch: number; copies: Map<string, AlarmCopy> }> {
    const r = await this.redis.multi().incr(epochKey(k)).hgetall(copiesKey(k)).exec();
    const failed = r?.find(([err]) => err);
    if (!r || failed) throw failed?.[0] ?? new Error('transaction aborted');
    const copies = new Map<string, AlarmCopy>();
    for (const [id, json] of Object.entries(r[1]![1] as Record<string, string>)) {
      try {
        copies.set(id, JSON.parse(json) as AlarmCopy);
      } catch (err) {
        this.d.metrics.inc('cosafe_sync_alarm_state_errors_total', { op: 'decode' });
        this.d.logger.error({ code: 'COSAFE_ERR_ALARM_STATE', partition: k, alarmId: id, err: (err as Error).message }, 'a shared alarm copy in Redis is not valid JSON; the local state of this alarm is kept');
      }
    }
    return { epoch: r[0]![1] as number, copies };
  }

  /** Synchronous, so that nothing of the partition happens between deciding and importing. */
  private takeOver(k: number, epoch: number, copies: Map<string, AlarmCopy>): void {
    const { store, lifecycle, metrics, logger, workerId } = this.d;
    const inK = (site: string) => this.d.ownership.partitionOf(site) === k;
    const local = new Map<string, LocalCopyState>();
    for (const a of store.list({ includeNormal: true })) {
      if (!inK(a.site)) continue;
      const c = store.copyState(a.id);
      local.set(a.id, { version: c ? { epoch: c.epoch, seq: c.seq } : null, written: c?.written ?? false });
    }
    const plan = planTakeover(local, new Map([...copies].map(([id, c]) => [id, c.version])));
    this.epochs.set(k, { epoch, seq: 0 });
    this.unsynced.delete(k);
    let taken = 0;
    for (const id of plan.take) {
      const copy = copies.get(id)!;
      try {
        lifecycle.adopt(copy, workerId);
        store.setCopyState(id, copy.version, true);
        if (copy.worker !== workerId) taken++;
      } catch (err) {
        metrics.inc('cosafe_sync_alarm_state_errors_total', { op: 'import' });
        logger.error({ code: 'COSAFE_ERR_ALARM_STATE', partition: k, alarmId: id, err: (err as Error).message }, 'could not import an alarm taken over; it is tried again at the next claim of the partition');
      }
    }
    if (taken) metrics.inc('cosafe_sync_alarms_taken_over_total', {}, taken);
    if (plan.take.length) {
      const from = [...new Set(plan.take.map((id) => copies.get(id)!.worker))];
      logger.warn({ partition: k, alarms: plan.take.length, from, epoch }, 'took over the alarm state of a partition: escalation and acknowledgements go on here');
    }
    // Local state newer than Redis' (written by us under an earlier epoch and not stored there): written again, under this one.
    for (const id of plan.write) this.changed(store.get(id)!);
  }

  /** A durable change of an alarm of a held partition: its copy is written (now, or once Redis answers). */
  private changed(a: AlarmRecord): void {
    const k = this.d.ownership.partitionOf(a.site);
    const e = this.epochs.get(k);
    if (!this.d.ownership.has(k) || !e) return;
    e.seq++;
    try {
      this.d.store.setCopyState(a.id, { epoch: e.epoch, seq: e.seq }, false);
    } catch (err) {
      this.d.logger.warn({ alarmId: a.id, err: (err as Error).message }, 'could not record the version of an alarm copy');
    }
    this.queue.add(a.id);
    this.kick();
  }

  private kick(): void {
    if (this.flushing || this.stopped) return;
    this.flushing = this.flushQueue().finally(() => {
      this.flushing = undefined;
    });
  }

  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.queue.size && !this.stopped) {
      this.kick();
      await this.flushing;
    }
  }

  private async flushQueue(): Promise<void> {
    const { store, lifecycle, metrics, workerId } = this.d;
    for (const id of [...this.queue]) {
      this.queue.delete(id);
      const state = store.copyState(id);
      const body = lifecycle.copyOf(id);
      if (!state || !body) continue;
      const k = this.d.ownership.partitionOf(body.alarm.site);
      if (!this.d.ownership.has(k)) continue;
      const copy: AlarmCopy = { v: 1, version: { epoch: state.epoch, seq: state.seq }, worker: workerId, ...body };
      let r: number;
      try {
        r = (await this.redis.eval(WRITE, 2, leaseKey(k), copiesKey(k), workerId, id, state.epoch, state.seq, JSON.stringify(copy))) as number;
      } catch (err) {
        this.queue.add(id);
        this.failed('write', err as Error, k);
        this.retryLater();
        return;
      }
      this.backoff.reset();
      const outcome = r === 1 ? 'written' : r === 0 ? 'superseded' : 'not-holder';
      metrics.inc('cosafe_sync_alarm_state_writes_total', { outcome });
      if (r === 1) store.copyWritten(id, copy.version);
      else if (r === -1) this.throttled.warn(`not-holder:${k}`, { code: 'COSAFE_ERR_ALARM_STATE', partition: k, alarmId: id }, 'the lease of this partition is no longer ours: the alarm copy was not written (the holder goes on from its own)');
    }
  }

  /** Redis did not answer: writes and partitions taken meanwhile are tried again, with backoff. */
  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retry();
    }, this.backoff.next());
  }

  private async retry(): Promise<void> {
    for (const k of [...this.unsynced]) {
      if (!this.d.ownership.has(k)) continue;
      try {
        const loaded = await this.load(k);
        if (!this.d.ownership.has(k) || this.stopped) continue;
        this.takeOver(k, loaded.epoch, loaded.copies);
        this.d.lifecycle.armWhere((site) => this.d.ownership.partitionOf(site) === k);
      } catch (err) {
        this.failed('load', err as Error, k);
        this.retryLater();
        return;
      }
    }
    if (this.queue.size) this.kick();
  }

  /** HTTP acknowledgements relayed by other workers, for the partitions held here. */
  private async takeRelayedAcks(): Promise<void> {
    for (const k of this.d.ownership.partitions()) {
      if (this.unsynced.has(k) || this.stopped) continue;
      let items: string[] | null;
      try {
        items = await this.redis.lpop(acksKey(k), 50);
      } catch (err) {
        this.failed('relay', err as Error, k);
        return;
      }
      for (const item of items ?? []) {
        let ack: RelayedAck;
        try {
          ack = JSON.parse(item) as RelayedAck;
        } catch {
          this.d.metrics.inc('cosafe_sync_alarm_state_errors_total', { op: 'decode' });
          continue;
        }
        const r = this.d.lifecycle.acknowledge({ alarmId: ack.alarmId, who: ack.who, channel: 'http', ...(ack.operator ? { operator: ack.operator } : {}), ...(ack.note ? { note: ack.note } : {}), ...(ack.eventId ? { eventId: ack.eventId } : {}), ...(ack.warnPublic !== undefined ? { warnPublic: ack.warnPublic } : {}) });
        this.d.logger.info({ alarmId: ack.alarmId, by: ack.who.id, via: ack.via, ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) }, 'applied an acknowledgement another cloud-sync worker took over HTTP');
        if (!r.ok && r.reason === 'elsewhere') {
          // The partition moved on meanwhile: back in the list, for the next holder.
          await this.redis.rpush(acksKey(k), item).catch((err: Error) => this.failed('relay', err, k));
        }
      }
    }
  }

  /** MQTT acknowledgements kept because nobody could place them, offered to this new holder of `k`; old ones are dropped. */
  private async replayUnplaced(k: number): Promise<void> {
    let all: Record<string, string>;
    try {
      all = await this.redis.hgetall(UNPLACED_ACKS);
    } catch (err) {
      this.failed('relay', err as Error, k);
      return;
    }
    const now = this.d.clock.now();
    const old: string[] = [];
    for (const [digest, json] of Object.entries(all)) {
      try {
        const s = JSON.parse(json) as { topic: string; payload: string; at: number };
        if (now - s.at > UNPLACED_KEPT_MS) {
          old.push(digest);
          continue;
        }
        if (this.d.lifecycle.replayAck(s.topic, Buffer.from(s.payload, 'base64'), (site) => this.d.ownership.partitionOf(site) === k)) {
          this.d.logger.info({ partition: k, topic: s.topic }, 'applied an acknowledgement that came while nobody held its partition');
        }
      } catch {
        old.push(digest);
      }
    }
    if (old.length) await this.redis.hdel(UNPLACED_ACKS, ...old).catch(() => 0);
  }

  private failed(op: string, err: Error, partition?: number): void {
    this.d.metrics.inc('cosafe_sync_alarm_state_errors_total', { op });
    this.throttled.write(
      'error',
      `${op}`,
      { code: 'COSAFE_ERR_ALARM_STATE', redis: redactUrl(this.d.redisUrl), op, ...(partition !== undefined ? { partition } : {}), err: err.message },
      'cannot reach the Redis that keeps the shared alarm state; the local state goes on and is written when it answers',
    );
  }
}
