/**
 * Types for aedes-persistence's in-memory implementation (asyncPersistence.js),
 * which ships its declarations under a path TypeScript does not look in. Only
 * what broker/sqlite-persistence.ts uses; packets stay loosely typed, as Aedes
 * hands them over.
 */
declare module 'aedes-persistence/asyncPersistence.js' {
  import type { Readable } from 'node:stream';

  export type StoredPacket = Record<string, unknown> & {
    cmd?: string;
    topic?: string;
    payload?: Buffer | string;
    qos?: number;
    retain?: boolean;
    messageId?: number;
    brokerId?: string;
    brokerCounter?: number;
    clientId?: string;
  };
  export interface PersistedSubscription {
    topic: string;
    qos: number;
    rh?: number;
    rap?: boolean | number;
    nl?: boolean | number;
    subscriptionIdentifier?: number;
  }
  export interface PersistenceClient {
    id: string;
  }

  export default class MemoryPersistence {
    constructor(opts?: { broadcastSubscriptions?: boolean });
    static Packet: new (original: StoredPacket, broker?: { id: string; counter: number }) => StoredPacket;
    readonly broker: { id: string; counter: number } | undefined;
    setup(broker: unknown): Promise<void>;
    storeRetained(packet: StoredPacket): Promise<void>;
    createRetainedStream(pattern: string): Readable;
    createRetainedStreamCombi(patterns: string[]): Readable;
    addSubscriptions(client: PersistenceClient, subs: PersistedSubscription[]): Promise<void>;
    removeSubscriptions(client: PersistenceClient, subs: string[]): Promise<void>;
    subscriptionsByClient(client: PersistenceClient): Promise<PersistedSubscription[]>;
    countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
    subscriptionsByTopic(pattern: string): Promise<{ clientId: string; topic: string; qos: number }[]>;
    cleanSubscriptions(client: PersistenceClient): Promise<void>;
    getClientList(topic: string): Readable;
    destroy(): Promise<void>;
  }
}
