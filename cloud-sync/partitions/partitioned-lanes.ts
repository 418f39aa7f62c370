import { readdirSync } from 'node:fs';
import type { BrokerUrls } from '../../core/mqtt-reconnect.js';
import type { Clock } from '../../core/clock.js';
import { dataPath, type Config } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { Metrics } from '../../core/metrics.js';
import { AlarmInbox } from '../alarm-inbox.js';
import { ContractConsumer } from '../consumer.js';
import type { SiteRegistry } from '../registry/site-registry.js';
import type { Sink } from '../sinks/sink.js';
import type { PartitionSites, TelemetryLane } from '../telemetry/telemetry-lane.js';
import type { AlarmHandover } from './alarm-handover.js';
import { partitionOf } from './partition.js';
import { PartitionLeases } from './partition-leases.js';
import { cloudSyncInstance } from './worker-id.js';

/** How often the registry is looked at for sites added or removed (one `PRAGMA data_version` when nothing changed). */
const REGISTRY_POLL_MS = 1000;

export interface PartitionedLanesDeps {
  config: Config;
  brokerUrl: BrokerUrls;
  brokerAuth?: MqttClientAuth;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** The alarm lane's sinks, shared by every partition (one dispatch, one store per worker). */
  sinks: readonly Sink[];
  /** The site registry (the dispatch's): which sites' readings each partition's session subscribes to. */
  sites: SiteRegistry;
  /** The alarm state of each partition in Redis (the dispatch's): imported before a partition's sessions connect. */
  handover?: AlarmHandover;
}

/**
 * A cloud-sync worker with `cloudSync.partitions` (README "Cloud-sync
 * workers"): for each partition whose lease it holds (partition-leases.ts),
 * two persistent sessions, `cosafe-cloud-sync-p<k>-alarms` (every site's
 * events and status, each handled by the session of its own partition only)
 * and `cosafe-cloud-sync-p<k>` (the readings of the registered sites of the
 * partition, in the telemetry lane); subscriptions made on every connect and
 * changed when the registry changes.
 *
 * Why every alarm session reads every site's events: a site that is not
 * registered has no subscription of its own to be found by, and an alarm must
 * never reach nobody. So every partition's alarm session has every event
 * queued, and each message is handled by exactly one of them, the session of
 * the site's partition (`partitionOf`); the others acknowledge it and leave it
 * to that one. The one exception is a partition whose sessions have never
 * been made (a cluster's first seconds): its messages are queued nowhere, so
 * every session handles them (at least once: duplicates carry the same event
 * id).
 *
 * Each partition has its own alarm inbox (`alarm-inbox-p<k>.db`), and what a
 * partition's inbox took from the broker is handed to the sinks even after
 * the partition went to another worker, and at the next start.
 */
export class PartitionedLanes {
  private readonly leases: PartitionLeases;
  private readonly partitions = new Map<number, { consumer: ContractConsumer; inbox: AlarmInbox }>();
  private readonly count: number;
  private telemetry: TelemetryLane | undefined;
  private sitesOf = new Map<number, string[]>();
  private readonly unregistered = new Set<string>();
  private registryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: PartitionedLanesDeps) {
    const p = d.config.cloudSync.partitions!;
    this.count = p.count;
    this.leases = new PartitionLeases({
      redisUrl: p.redisUrl,
      count: p.count,
      ttlMs: p.leaseTtlMs,
      workerId: cloudSyncInstance(d.config),
      logger: d.logger.child({ component: 'partitions' }),
      metrics: d.metrics,
      clock: d.clock,
      acquire: (k) => this.acquire(k),
      release: (k) => this.release(k),
    });
  }

  /** The partitions this worker holds now. */
  held(): number[] {
    return this.leases.partitions();
  }

  /** Every session of every held partition is connected (true while none is held: nothing to be connected). */
  get connected(): boolean {
    return this.alarmConnected && (this.telemetry?.health().connected ?? false);
  }

  get alarmConnected(): boolean {
    return this.held().every((k) => this.partitions.get(k)?.consumer.connected === true);
  }

  /** A partition's session closed: is the lease still ours, before mqtt.js reconnects it? */
  check(): void {
    this.leases.check();
  }

  async start(telemetry: TelemetryLane): Promise<void> {
    this.telemetry = telemetry;
    this.readRegistry();
    // What inboxes of partitions held before took and did not hand on yet, whoever holds them now.
    for (const name of readdirSync(this.d.config.dataDir)) {
      const m = /^alarm-inbox-p(\d+)\.db$/.exec(name);
      if (!m) continue;
      const k = Number(m[1]);
      const p = this.partition(k);
      if (p.inbox.count() > 0) await p.consumer.start({ connect: false });
    }
    await this.leases.start();
    this.registryTimer = setInterval(() => this.readRegistry(), REGISTRY_POLL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.registryTimer);
    await this.leases.stop();
    for (const { consumer, inbox } of this.partitions.values()) {
      await consumer.stop();
      inbox.close();
    }
    this.partitions.clear();
  }

  private partition(k: number): { consumer: ContractConsumer; inbox: AlarmInbox } {
    let p = this.partitions.get(k);
    if (p) return p;
    const inbox = new AlarmInbox(dataPath(this.d.config, `alarm-inbox-p${k}.db`));
    const consumer = new ContractConsumer({
      brokerUrl: this.d.brokerUrl,
      ...(this.d.brokerAuth ? { auth: this.d.brokerAuth } : {}),
      logger: this.d.logger.child({ partition: k }),
      metrics: this.d.metrics,
      sinks: this.d.sinks,
      lanes: ['alarm'],
      instance: `p${k}`,
      inbox,
      inboxSize: () => [...this.partitions.values()].reduce((n, p) => n + p.inbox.count(), 0),
      accept: (site) => this.accept(k, site),
      onAlarmSubscribed: () => this.leases.markProvisioned(k),
      onClose: () => this.leases.check(),
      now: () => this.d.clock.now(),
    });
    p = { consumer, inbox };
    this.partitions.set(k, p);
    return p;
  }

  private accept(k: number, site: string): boolean {
    const own = partitionOf(site, this.count);
    if (own === k) {
      this.noteSite(site);
      return true;
    }
    return !this.leases.provisioned(own);
  }

  private async acquire(k: number): Promise<void> {
    const p = this.partition(k);
    // The alarm state first: an event of the partition then meets the state its last holder left.
    await this.d.handover?.acquire(k);
    await p.consumer.start();
    await this.telemetry?.setPartitions(this.telemetryParts());
  }

  /** Both sessions closed before the lease is given back; the inbox goes on handing on what it took. */
  private async release(k: number): Promise<void> {
    await this.partitions.get(k)?.consumer.detach();
    await this.d.handover?.release(k);
    await this.telemetry?.setPartitions(this.telemetryParts());
  }

  private telemetryParts(): PartitionSites[] {
    return this.held().map((k) => ({ partition: k, sites: this.sitesOf.get(k) ?? [] }));
  }

  /** Sites added or removed: the telemetry sessions subscribe to the readings of the new ones from now on. */
  private readRegistry(): void {
    const next = new Map<number, string[]>();
    const sites = this.d.sites.all();
    for (const site of sites) {
      const k = partitionOf(site.id, this.count);
      next.set(k, [...(next.get(k) ?? []), site.id]);
    }
    const changed = this.held().some((k) => (next.get(k) ?? []).join('\n') !== (this.sitesOf.get(k) ?? []).join('\n'));
    this.sitesOf = next;
    const registered = new Set(sites.map((s) => s.id));
    for (const site of this.unregistered) if (registered.has(site)) this.unregistered.delete(site);
    this.d.metrics.set('cosafe_sync_unregistered_sites', {}, this.unregistered.size);
    if (changed) {
      this.d.logger.info({ partitions: this.held() }, 'the site registry changed: subscribing the telemetry sessions to its sites');
      void this.telemetry?.setPartitions(this.telemetryParts());
    }
  }

  /** A site of one of this worker's partitions was heard from: its readings are received only if it is registered. */
  private noteSite(site: string): void {
    if (this.unregistered.has(site) || this.d.sites.lookup(site)) return;
    this.unregistered.add(site);
    this.d.metrics.set('cosafe_sync_unregistered_sites', {}, this.unregistered.size);
    this.d.logger.warn(
      { code: 'COSAFE_ERR_SITE_UNREGISTERED', site },
      'a site that is not in the registry is sending: with cloudSync.partitions its alarms are handled but its readings are not received (register it: cosafe sites add)',
    );
  }
}
