import type { AedesOptions, Client } from 'aedes';
import type { Clock } from '../../core/clock.js';
import type { Config } from '../../core/config.js';
import type { LoginLimits, LoginVerdict } from '../limits/login-limits.js';
import { PublishThrottle } from '../limits/publish-throttle.js';
import type { ConnectionInfo } from '../listeners/connection-info.js';
import type { RefusalReason, SecurityEvents } from '../security-events.js';
import { mayPublish, mayReceive, maySubscribe } from './acl.js';
import { stampAck } from './ack-stamp.js';
import type { Authenticator } from './authenticator.js';
import type { Session, Sessions } from './sessions.js';

export interface AuthHooksDeps {
  authenticator: Authenticator;
  sessions: Sessions;
  infoOf(conn: object): ConnectionInfo | undefined;
  limits: Config['broker']['limits'];
  /** Failed logins and connections per identity: this broker's own counts, or a cluster's (broker/backends/). */
  loginLimits: LoginLimits;
  events: SecurityEvents;
  clock: Clock;
  /** Called for every admitted session (the hub checks a gateway's site against its registry). */
  onAdmitted?: (identity: Session['identity']) => void;
}

type Hooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>>;

/** An error already counted and logged here: the broker's generic client-error handler skips it. */
export class ReportedError extends Error {
  readonly reported = true;
  constructor(
    message: string,
    readonly returnCode?: 2 | 3 | 4 | 5,
  ) {
    super(message);
  }
}

export function isReported(err: unknown): boolean {
  return err instanceof ReportedError;
}

/**
 * The Aedes hooks, filled with the cosafe policy, deny by default: no session
 * without an identity the listener admits, no publish or subscription the ACL
 * does not grant, no delivery the ACL would not grant either.
 */
export function createAuthHooks(d: AuthHooksDeps): Hooks {
  const { sessions, events, limits } = d;

  const refuse = (info: ConnectionInfo, reason: RefusalReason, returnCode: 2 | 3 | 4 | 5, username: string | undefined) => {
    if (returnCode === 4 || returnCode === 5) d.loginLimits.failed(info.address, triedIdentity(info, username));
    events.refused(info, reason, username);
    return new ReportedError(`connection refused: ${reason}`, returnCode);
  };

  /** Undefined: admitted; 'gone': the client left meanwhile (Aedes drops the answer). */
  type Admission = ReportedError | undefined | 'gone';

  const admitSession = (client: Client, info: ConnectionInfo, outcome: { identity: Session['identity']; method: Session['method']; generation: number }, username: string | undefined): Admission | Promise<Admission> => {
    const { identity } = outcome;
    if (!info.admits.has(identity.role)) return refuse(info, 'role-not-admitted', 5, username);
    // The will is published on the client's behalf later: it must be a topic the client may publish to now.
    if (info.willTopic !== undefined && !mayPublish(identity, info.willTopic)) {
      events.denied(identity, 'publish', info.willTopic, client.id);
      return refuse(info, 'will-denied', 5, username);
    }
    const owner = sessions.ownerOf(client.id);
    if (owner !== undefined && owner !== identity.id) return refuse(info, 'client-id-taken', 2, username);
    if (identity.role === 'resident') return open(client, info, outcome, false);
    // cloud-sync's workers open two sessions per partition under one service identity (cloudSync.partitions).
    const max = identity.role === 'service' ? limits.maxConnectionsPerService : limits.maxConnectionsPerIdentity;
    const got = d.loginLimits.acquire(identity.id, client.id, max);
    const decide = (ok: boolean): Admission => {
      if (!ok) {
        events.limit('connections-per-identity', identity.id, { identity: identity.id, address: info.address, max });
        return new ReportedError('too many connections for this identity', 3);
      }
      if (client.closed) {
        d.loginLimits.release(identity.id, client.id);
        return 'gone';
      }
      return open(client, info, outcome, true);
    };
    // One broker alone answers at once, and the session is added in the same step (two logins cannot both take the last connection).
    return typeof got === 'boolean' ? decide(got) : got.then(decide);
  };

  const open = (client: Client, info: ConnectionInfo, outcome: { identity: Session['identity']; method: Session['method']; generation: number }, counted: boolean): undefined => {
    const { identity } = outcome;
    const session: Session = {
      client,
      clientId: client.id,
      identity,
      method: outcome.method,
      generation: outcome.generation,
      info,
      throttle: new PublishThrottle({ rate: limits.publishesPerSecond, burst: limits.publishBurst, maxHeld: limits.maxHeldPublishes, clock: d.clock }),
      deviceTopics: d.authenticator.deviceTopicsFor(identity),
    };
    sessions.add(session);
    client.conn.once('close', () => {
      sessions.remove(session);
      if (counted) d.loginLimits.release(identity.id, client.id);
    });
    d.onAdmitted?.(identity);
    return undefined;
  };

  /** Refused before the secret is hashed: an identity locked out from this address, or an address that sprayed. */
  const lockedOut = (info: ConnectionInfo, username: string | undefined, verdict: Extract<LoginVerdict, { ok: false }>): ReportedError => {
    if (verdict.why === 'identity') {
      events.lockedOut(info, username, verdict.failures, limits.authFailuresPerMinute);
      return new ReportedError('too many failed logins for this identity from this address', 5);
    }
    const max = limits.authFailedIdentitiesPerMinute;
    events.limit('auth-failed-identities', info.address, {
      listener: info.listener,
      address: info.address,
      perMinute: max,
      why: `failed logins for ${max} different identities from ${info.address} within a minute, on the brokers of the cluster (password spraying?): the address is refused for the rest of the minute`,
    });
    return new ReportedError('too many identities failed from this address', 5);
  };

  return {
    preConnect(client, packet, done) {
      const info = d.infoOf(client.conn);
      if (!info) return done(new ReportedError('connection not attached by a cosafe listener'), false);
      if (packet.will) info.willTopic = packet.will.topic;
      done(null, true);
    },

    authenticate(client, username, password, done) {
      const info = d.infoOf(client.conn);
      if (!info) return done(new ReportedError('connection not attached by a cosafe listener', 5) as never, false);
      // Over the address's connect rate: told so in the CONNACK (3, server unavailable [MQTT-3.2.2-6]: the
      // connection is closed after it), before any secret is checked; logged when the connection was admitted.
      if (info.refusal) return done(new ReportedError(`connection refused: ${info.refusal.why}`, 3) as never, false);
      // Before the secret is hashed: an identity locked out from this address costs no hashing,
      // known or not (the decoy hash of unknown ids is not needed to hide which ids exist here).
      const serverError = (err: Error) => done(Object.assign(err, { returnCode: 3 }) as never, false);
      const finish = (admission: Admission) => {
        if (admission === 'gone') done(null, false);
        else if (admission) done(admission as never, false);
        else done(null, true);
      };
      const login = (verdict: LoginVerdict) => {
        if (!verdict.ok) return done(lockedOut(info, username, verdict) as never, false);
        d.authenticator.identify(info, username, password).then((outcome) => {
          // The client may have gone while its secret was checked (scrypt, for a store written before sha256); Aedes drops the answer then.
          if (client.closed) return done(null, false);
          if (!outcome.ok) return done(refuse(info, outcome.reason, outcome.returnCode, username) as never, false);
          const admission = admitSession(client, info, outcome, username);
          if (admission instanceof Promise) admission.then(finish, serverError);
          else finish(admission);
        }, serverError);
      };
      const verdict = d.loginLimits.check(info.address, triedIdentity(info, username));
      if (verdict instanceof Promise) verdict.then(login, serverError);
      else login(verdict);
    },

    authorizePublish(client, packet, done) {
      // Aedes passes no client only for the will of a client of another broker node, checked at its CONNECT.
      if (!client) return done(null);
      const session = sessions.get(client);
      if (!session || !mayPublish(session.identity, packet.topic)) {
        events.denied(session?.identity, 'publish', packet.topic, client.id);
        // [MQTT-3.3.5-2]: MQTT 3.1.1 cannot tell the client; closing the connection is the answer.
        return done(new ReportedError(`publish to ${packet.topic} denied`));
      }
      const stamp = stampAck(session.identity, packet.topic, packet.payload);
      if (stamp && 'error' in stamp) {
        events.denied(session.identity, 'publish', packet.topic, client.id);
        return done(new ReportedError(`publish to ${packet.topic} denied: ${stamp.error}`));
      }
      if (stamp) packet.payload = stamp.payload;
      // The will, published as the client goes: not subject to the client's rate.
      if (client.closed) return done(null);
      const verdict = session.throttle.admit(() => done(null));
      if (verdict === 'now') return done(null);
      if (verdict === 'held') {
        events.limit('publish-rate', session.identity.id, { identity: session.identity.id, client: client.id, perSecond: limits.publishesPerSecond, held: session.throttle.heldCount });
        return;
      }
      events.limit('held-publishes', session.identity.id, { identity: session.identity.id, client: client.id, max: limits.maxHeldPublishes });
      done(new ReportedError('too many publishes held back'));
    },

    authorizeSubscribe(client, subscription, done) {
      const session = sessions.get(client);
      if (!session || !maySubscribe(session.identity, subscription.topic, session.deviceTopics)) {
        events.denied(session?.identity, 'subscribe', subscription.topic, client.id);
        // A null subscription is answered with the failure return code 0x80 [MQTT-3.9.3].
        return done(null, null);
      }
      done(null, subscription);
    },

    authorizeForward(client, packet) {
      const session = sessions.get(client);
      if (!session || !mayReceive(session.identity, packet.topic, session.deviceTopics)) {
        events.denied(session?.identity, 'forward', packet.topic, client.id);
        return null;
      }
      return packet;
    },
  };
}

/**
 * The identity a login tried, for counting failures per address and identity:
 * the username, else the client certificate's CN, else "" (anonymous). Cut to
 * 128 characters: a username is up to 64 KiB, and the key is only a counter's.
 */
function triedIdentity(info: ConnectionInfo, username: string | undefined): string {
  return (username || info.certificate?.subjectCn || '').slice(0, 128);
}
