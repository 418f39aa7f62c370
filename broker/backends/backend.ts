import type { StoredPacket } from 'aedes-persistence/asyncPersistence.js';

/**
 * The seam between the broker and where its state lives. One process (the
 * embedded default, embedded-backend.ts): SQLite files in the data directory.
 * A cluster of brokers (redis-backend.ts): one Redis that every broker shares,
 * for sessions, subscriptions, retained messages, QoS 1 queues and wills
 * (aedes-persistence-redis) and for routing messages between brokers
 * (mqemitter-redis). Both persistences pass aedes-persistence's abstract suite
 * (tests/unit/broker/sqlite-persistence.test.ts,
 * tests/integration/redis-persistence.test.ts).
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
  /** QoS 1 messages acknowledged and not yet queued (broker/persist-before-ack.ts); undefined without durable persistence. */
  readonly journal: InboundJournal<unknown> | undefined;
  close(): Promise<void>;
}

/** The inbound journal of persist-before-ack. */
export interface InboundJournal<R> {
  journalAppend(packet: StoredPacket): Promise<R>;
  journalRemove(ref: R): Promise<void>;
  /** What to hand on again: this broker's own leftovers at start, and (in a cluster) the journals of brokers that died. */
  journalEntries(): Promise<{ ref: R; packet: StoredPacket }[]>;
  /** Set when journals of other brokers can turn up later (a cluster): how often to look for them. */
  readonly recoverEveryMs?: number;
}
