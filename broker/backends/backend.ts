import type { StoredPacket } from 'aedes-persistence/asyncPersistence.js';
import type { AddressVerdict } from '../limits/address-guard.js';

/**
 * The seam between the broker and where its state lives. One process (the
 * embedded default): SQLite files in the data directory and maps in memory.
 * A cluster of brokers: one Redis that every broker shares. Each part has one
 * interface here and an implementation per backend (embedded-backend.ts,
 * redis-backend.ts); both pass the same conformance suites
 * (tests/unit/broker/backends/, tests/integration/redis-backend.test.ts).
 */
export interface BrokerBackend {
  readonly kind: 'embedded' | 'redis';
  /** Aedes' persistence (sessions, subscriptions, retained messages, QoS 1 queues, wills); undefined: Aedes' own in memory. */
  readonly persistence: unknown;
  /** Aedes' message routing between brokers (mqemitter); undefined: in this process only. */
  readonly mq: unknown;
  /** Aedes' heartbeat: how soon the others notice a dead broker and publish its clients' wills (3 beats). */
  readonly heartbeatMs: number;
  /** QoS 1 messages acknowledged and not yet queued (broker/persist-before-ack.ts); undefined without durable persistence. */
  readonly journal: InboundJournal<unknown> | undefined;
  readonly sessions: SessionRegistry;
  readonly logins: LoginLimits;
  readonly revocations: RevocationFeed;
  /** For /health: whether the shared store answers (always true in one process). */
  healthy(): boolean;
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

export interface SessionClaim {
  clientId: string;
  identityId: string;
  /** clean: false [MQTT-3.1.2-4]: the client id stays its identity's after the connection ends. */
  persistent: boolean;
  /** maxConnectionsPerIdentity (0: no limit) */
  maxPerIdentity: number;
}

export type SessionAdmission =
  | { ok: true; ticket: SessionTicket }
  | { ok: false; reason: 'client-id-taken'; owner: string }
  | { ok: false; reason: 'connections-per-identity'; count: number };

/** One admitted connection, as the registry knows it (handed back on release). */
export interface SessionTicket {
  readonly key: string;
  readonly claim: SessionClaim;
}

/**
 * Who owns a client id, and how many connections each identity has, across
 * every broker that shares the backend: one identity cannot take over another's
 * client id and with it its queued messages or its connection [MQTT-3.1.4-2],
 * and `maxConnectionsPerIdentity` holds for the whole cluster.
 */
export interface SessionRegistry {
  /** Admits one connection (atomically: two brokers cannot both admit the last one). Connections with the same client id are a takeover and do not count. */
  admit(claim: SessionClaim): Promise<SessionAdmission>;
  /** The connection ended: it stops counting; a clean session's client id is free again. */
  release(ticket: SessionTicket): Promise<void>;
  close(): Promise<void>;
}

/**
 * Failed logins, per address and identity and per address (AddressGuard has
 * the why). In a cluster the failure counts are shared, so ten wrong passwords
 * are ten across all brokers, not ten per broker; connection attempts per
 * address stay per broker (they protect that broker's accept loop).
 */
export interface LoginLimits {
  /** At the TCP accept, before any TLS or MQTT work: synchronous, from what this broker knows now. */
  admitAddress(address: string): AddressVerdict;
  /** At CONNECT, before the secret is hashed: false once `identity` failed too often from `address`. */
  mayTry(address: string, identity: string): Promise<boolean>;
  failed(address: string, identity: string): Promise<void>;
  /** For the log. */
  failuresOf(address: string, identity: string): Promise<number>;
}

/** What the cluster knows of a credential beyond this broker's copy of the credential store. */
export interface CredentialState {
  generation: number;
  revoked: boolean;
}

/**
 * How a rotation or revocation reaches every running broker at once. The
 * credential store file is the record (hashes, roles); in a cluster each
 * credential's latest generation and revocation are also in Redis, announced
 * on a channel, so a broker whose copy of the file is behind refuses the old
 * secret and ends its sessions within one round trip.
 */
export interface RevocationFeed {
  /** `onChange` runs whenever a credential may have been rotated or revoked (the broker re-checks its sessions). */
  start(onChange: () => void): Promise<void>;
  /** The cluster's word on one identity, if it has one (synchronous: from a copy kept up to date). */
  stateOf(identityId: string): CredentialState | undefined;
  /** Looks again now (tests, and after the broker's own changes). */
  check(): void;
  stop(): Promise<void>;
}
