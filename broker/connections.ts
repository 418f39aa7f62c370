import type { Duplex } from 'node:stream';
import type { Metrics } from '../core/metrics.js';
import type { Config } from '../core/config.js';
import { AddressGuard } from './limits/address-guard.js';
import { GuardedConnection } from './limits/frame-guard.js';
import type { ConnectionGate, ConnectionInfo, ListenerName } from './listeners/connection-info.js';
import type { SecurityEvents } from './security-events.js';

export interface ConnectionsDeps {
  limits: Config['broker']['limits'];
  addressGuard: AddressGuard;
  events: SecurityEvents;
  metrics: Metrics;
  /** Hands an admitted, guarded stream to Aedes. */
  handle(stream: Duplex): void;
}

/**
 * The door every listener's connections come through: the per-address and
 * total limits are checked first, then the stream gets its packet-size guard
 * and is handed to Aedes. Owns every open connection, so that stopping the
 * broker also ends the ones that never sent CONNECT.
 */
export class Connections implements ConnectionGate {
  private readonly open = new Set<Duplex>();
  private readonly infos = new WeakMap<object, ConnectionInfo>();
  private readonly perListener: Record<ListenerName, number> = { tcp: 0, tls: 0, ws: 0 };
  private closing = false;
  /**
   * Connections admitted over the per-address rate, per address, not yet
   * attached: their CONNECT gets CONNACK 3 with the reason, so a device behind
   * a busy NAT logs "server unavailable" instead of a bare ECONNRESET. Keyed
   * by address because the listeners create the ConnectionInfo after a TLS or
   * WebSocket handshake; an address back under its rate clears its count (a
   * handshake that never finished must not refuse a later connection).
   */
  private readonly overRate = new Map<string, number>();

  constructor(private readonly d: ConnectionsDeps) {}

  admit(address: string | undefined, listener: ListenerName): boolean {
    if (this.closing) return false;
    const from = address ?? 'unknown';
    if (this.open.size >= this.d.limits.maxConnections) {
      this.d.events.limit('connections', 'all', { listener, address: from, max: this.d.limits.maxConnections });
      return false;
    }
    const verdict = this.d.addressGuard.admit(from);
    if (verdict === 'failed-identities') {
      const max = this.d.limits.authFailedIdentitiesPerMinute;
      this.d.events.limit('auth-failed-identities', from, {
        listener,
        address: from,
        perMinute: max,
        why: `failed logins for ${max} different identities from ${from} within a minute (password spraying?): the address is refused for the rest of the minute`,
      });
      return false;
    }
    if (verdict === 'connect-attempts' || verdict === 'connect-flood') {
      const max = this.d.limits.connectAttemptsPerMinute;
      const told = verdict === 'connect-attempts';
      this.d.events.limit('connect-attempts', from, {
        listener,
        address: from,
        perMinute: max,
        why: `more than ${max} connections from ${from} within a minute (broker.limits.connectAttemptsPerMinute): ${told ? 'refused at CONNECT with return code 3, server unavailable' : 'twice the limit, closed without an answer'}`,
      });
      if (!told) return false;
      this.overRate.set(from, (this.overRate.get(from) ?? 0) + 1);
      return true;
    }
    this.overRate.delete(from);
    return true;
  }

  attach(raw: Duplex, info: ConnectionInfo): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    const stream = new GuardedConnection(raw, this.d.limits.maxPacketBytes, (err) =>
      this.d.events.limit('packet-size', info.address, { listener: info.listener, address: info.address, bytes: err.bytes, max: err.limit }),
    );
    const over = this.overRate.get(info.address);
    if (over !== undefined) {
      if (over > 1) this.overRate.set(info.address, over - 1);
      else this.overRate.delete(info.address);
      info.refusal = { limit: 'connect-attempts', why: `more than ${this.d.limits.connectAttemptsPerMinute} connections from this address within a minute` };
    }
    this.infos.set(stream, info);
    this.open.add(raw);
    this.count(info.listener, +1);
    raw.once('close', () => {
      this.open.delete(raw);
      this.count(info.listener, -1);
    });
    this.d.handle(stream);
  }

  /** What is known about the connection Aedes reads from (`client.conn`). */
  infoOf(conn: object): ConnectionInfo | undefined {
    return this.infos.get(conn);
  }

  destroyAll(): void {
    this.closing = true;
    for (const raw of this.open) raw.destroy();
  }

  private count(listener: ListenerName, by: number): void {
    this.perListener[listener] += by;
    this.d.metrics.set('cosafe_broker_connections', { listener }, this.perListener[listener]);
  }
}
