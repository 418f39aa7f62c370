import type { StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type { Config } from '../../core/config.js';
import type { Metrics } from '../../core/metrics.js';
import type { CredentialStore } from '../auth/credential-store.js';
import type { LoginLimits } from '../limits/login-limits.js';

/**
 * The seam between the broker and where its state lives. One process (the
 * embedded default, embedded-backend.ts): SQLite files in the data directory.
 * A cluster of brokers (redis-backend.ts): one Redis that every broker shares,
 * for sessions, subscriptions, retained messages, QoS 1 queues and wills
 * (aedes-persistence-redis) and for routing messages between brokers
 * (mqemitter-redis). Both persistences pass aedes-persistence's abstract suite
 * (tests/unit/broker/sqlite-persistence.test.ts,
 * tests/integration/redis-persistence.test.ts). The login limits and the
 * credential store's changes (revocations, rotations, new credentials) go
 * through it too, so that in a cluster they hold for every broker at once.
 */
export interface BrokerBackend {
  readonly kind: 'embedded' | 'redis';
  /** Aedes' persistence; undefined: Aedes' own, in memory (broker.persistence: memory). */
  readonly persistence: object | undefined;
  /** Aedes' message routing between brokers (an mqemitter); undefined: in this process only. */
  readonly mq: object | undefined;
  /** Aedes' broker id (in a cluster, each broker's own; its wills and journal are filed under it). */
  readonly brokerId: string | undefined;
  /** Aedes' heartbeat: the others notice a dead broker after 3 beats and publish its clients' wills. */
  readonly heartbeatMs: number;
  /** Durable persistence: QoS 1 is queued before its PUBACK, and an older version's journal handed on (broker/persist-before-ack.ts); undefined without. */
  readonly journal: InboundJournal<unknown> | undefined;
  /**
   * The login limits (failed logins, connections per identity): `local` are
   * this broker's own counts; one broker alone uses them as they are, a
   * cluster counts in Redis and falls back to them while Redis is away.
   */
  loginLimits(local: LoginLimits, limits: Config['broker']['limits']): LoginLimits;
  /** Shares this broker's credential store with the other brokers (a cluster); undefined: the file is the whole store. */
  shareCredentials?(d: { store: CredentialStore; metrics: Metrics; onChange: () => void }): Promise<SharedCredentials>;
  close(): Promise<void>;
}

export interface SharedCredentials {
  /** This broker's file was changed by another connection (the CLI): tell the other brokers. */
  localChanged(): Promise<void>;
  stop(): void;
}

/**
 * The inbound journal of brokers before publish-before-PUBACK
 * (broker/persist-before-ack.ts): messages acknowledged and not yet queued.
 * The broker no longer writes it; it hands on what such a broker left.
 */
export interface InboundJournal<R> {
  /** How those brokers wrote it (tests use it to leave what they would have left). */
  journalAppend(packet: StoredPacket): Promise<R>;
  journalRemove(ref: R): Promise<void>;
  /** What to hand on again: this broker's own leftovers at start, and (in a cluster) the journals of brokers that died. */
  journalEntries(): Promise<{ ref: R; packet: StoredPacket }[]>;
  /** Set when journals of other brokers can turn up later (a cluster): how often to look for them. */
  readonly recoverEveryMs?: number;
}
