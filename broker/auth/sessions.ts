import type { Client } from 'aedes';
import type { ConnectionInfo } from '../listeners/connection-info.js';
import type { PublishThrottle } from '../limits/publish-throttle.js';
import type { Identity } from './identity.js';

/** How a session proved who it is. */
export type AuthMethod = 'secret' | 'certificate' | 'internal' | 'anonymous';

/** An authenticated connection. */
export interface Session {
  readonly client: Client;
  readonly clientId: string;
  readonly identity: Identity;
  readonly method: AuthMethod;
  /** The stored credential's generation at login: a rotation raises it and ends this session. */
  readonly generation: number;
  readonly info: ConnectionInfo;
  readonly throttle: PublishThrottle;
  /** A gateway's: what its site's devices and bridges publish outside the contract, as filters (refreshed when the store changes). */
  deviceTopics: readonly string[];
}

/**
 * Every authenticated connection, by client and by identity. Also remembers
 * which identity owns each persistent MQTT session (clean: false), so that one
 * identity cannot take over another's client id and with it its queued messages
 * or its connection [MQTT-3.1.4-2].
 */
export class Sessions {
  private readonly byClient = new WeakMap<Client, Session>();
  private readonly byIdentity = new Map<string, Set<Session>>();
  private readonly owners = new Map<string, string>();

  add(session: Session): void {
    this.byClient.set(session.client, session);
    let set = this.byIdentity.get(session.identity.id);
    if (!set) {
      set = new Set();
      this.byIdentity.set(session.identity.id, set);
    }
    set.add(session);
    if (session.identity.role !== 'resident') this.owners.set(session.clientId, session.identity.id);
  }

  remove(session: Session): void {
    session.throttle.stop();
    const set = this.byIdentity.get(session.identity.id);
    if (!set?.delete(session)) return;
    if (set.size === 0) this.byIdentity.delete(session.identity.id);
    // A clean session ends with its connection [MQTT-3.1.2-6]; a persistent one keeps its owner.
    if (session.client.clean && this.owners.get(session.clientId) === session.identity.id && !this.hasClientId(session.clientId)) {
      this.owners.delete(session.clientId);
    }
  }

  get(client: Client): Session | undefined {
    return this.byClient.get(client);
  }

  all(): Session[] {
    return [...this.byIdentity.values()].flatMap((s) => [...s]);
  }

  get size(): number {
    let n = 0;
    for (const s of this.byIdentity.values()) n += s.size;
    return n;
  }

  /** Sessions of one identity, not counting one about to be taken over by the same client id. */
  countFor(identityId: string, exceptClientId: string): number {
    let n = 0;
    for (const s of this.byIdentity.get(identityId) ?? []) if (s.clientId !== exceptClientId) n++;
    return n;
  }

  /** The identity that owns a client id, if another identity does. */
  ownerOf(clientId: string): string | undefined {
    return this.owners.get(clientId);
  }

  private hasClientId(clientId: string): boolean {
    for (const set of this.byIdentity.values()) for (const s of set) if (s.clientId === clientId) return true;
    return false;
  }
}
