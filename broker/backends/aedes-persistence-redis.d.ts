/**
 * Types for aedes-persistence-redis' async persistence (asyncPersistence.js),
 * the one Aedes 1.x takes (its `setup` is an async function; the package's main
 * export wraps it in callbacks for older Aedes). It ships no declarations: only
 * what broker/backends/redis-persistence.ts uses.
 */
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  import type { Redis } from 'ioredis';
  import type { PersistedSubscription, PersistenceClient } from 'aedes-persistence/asyncPersistence.js';

  export default class AsyncRedisPersistence {
    constructor(opts: { conn: Redis; maxSessionDelivery?: number; packetTTL?: (packet: unknown) => number });
    readonly broker: { id: string; counter: number } | undefined;
    setup(broker: unknown): Promise<void>;
    addSubscriptions(client: PersistenceClient, subs: PersistedSubscription[]): Promise<void>;
    removeSubscriptions(client: PersistenceClient, subs: string[]): Promise<void>;
    outgoingStream(client: { id: string }): AsyncIterable<unknown>;
    createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
    createRetainedStream(pattern: string): AsyncIterable<unknown>;
    streamWill(brokers?: Record<string, unknown>): AsyncIterable<unknown>;
    getClientList(topic: string): AsyncIterable<unknown>;
    destroy(): Promise<void>;
  }
}
