import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { ID_PATTERN } from './contract/topics.js';
import type { AuthFailureReason } from './auth/authenticator.js';
import type { Identity } from './auth/identity.js';
import type { Session } from './auth/sessions.js';
import type { ConnectionInfo } from './listeners/connection-info.js';
import { ThrottledLog } from '../core/throttled-log.js';

export type LimitName =
  | 'packet-size'
  | 'publish-rate'
  | 'held-publishes'
  | 'connections'
  | 'connections-per-identity'
  | 'connect-attempts'
  | 'auth-failures'
  | 'auth-failed-identities'
  | 'inflight'
  | 'queue'
  | 'topic-levels';

export type RefusalReason = AuthFailureReason | 'role-not-admitted' | 'will-denied' | 'client-id-taken';

/**
 * Every refusal, denial and limit hit of the broker: always counted (at
 * /metrics), logged with its error code, but at most once per 10 s per
 * address or identity so that a flood cannot flood the log too.
 */
export class SecurityEvents {
  private readonly log: ThrottledLog;

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    clock: Clock,
  ) {
    this.log = new ThrottledLog(logger, clock);
  }

  refused(info: ConnectionInfo, reason: RefusalReason, username: string | undefined): void {
    this.metrics.inc('cosafe_broker_auth_failures_total', { reason, listener: info.listener });
    this.log.warn(
      `auth:${info.address}:${reason}`,
      // A username that is not an id may be a secret pasted into the wrong field: it is not logged.
      { code: 'COSAFE_ERR_AUTH_REJECTED', reason, listener: info.listener, address: info.address, username: loggable(username), ...(REFUSAL_HINTS[reason] ? { hint: REFUSAL_HINTS[reason] } : {}) },
      'client refused at connect',
    );
  }

  denied(identity: Identity | undefined, action: 'publish' | 'subscribe' | 'forward', topic: string, clientId: string | undefined): void {
    this.metrics.inc('cosafe_broker_denied_total', { action, role: identity?.role ?? 'none' });
    this.log.warn(
      `acl:${identity?.id ?? clientId}:${action}`,
      { code: 'COSAFE_ERR_ACL_DENIED', action, topic: topic.slice(0, 200), identity: identity?.id, role: identity?.role, client: clientId },
      action === 'publish' ? 'publish denied; the client is disconnected [MQTT-3.3.5-2]' : `${action} denied`,
    );
  }

  limit(limit: LimitName, key: string, fields: Record<string, unknown>): void {
    this.metrics.inc('cosafe_broker_limit_hits_total', { limit });
    this.log.warn(`limit:${limit}:${key}`, { code: 'COSAFE_ERR_BROKER_LIMIT', limit, ...fields }, `broker limit hit: ${limit}`);
  }

  /** An identity refused from one address after too many failed logins; the others from there are still served. */
  lockedOut(info: ConnectionInfo, username: string | undefined, failures: number, perMinute: number): void {
    const identity = loggable(username) ?? '(anonymous)';
    this.limit('auth-failures', `${info.address}:${identity}`, {
      listener: info.listener,
      address: info.address,
      identity,
      failures,
      perMinute,
      why: `${failures} failed logins for ${identity} from ${info.address} within a minute: that identity is refused from that address for the rest of the minute; other identities from the same address are still served`,
    });
  }

  sessionEnded(session: Session, reason: 'revoked' | 'rotated'): void {
    this.metrics.inc('cosafe_broker_sessions_ended_total', { reason });
    this.logger.warn({ identity: session.identity.id, client: session.clientId, reason }, `credential ${reason}: session ended`);
  }

  clientError(key: string, fields: Record<string, unknown>): void {
    this.metrics.inc('cosafe_broker_client_errors_total');
    this.log.warn(`error:${key}`, fields, 'broker client error');
  }
}

/**
 * What the operator does about a refusal. MQTT 3.1.1 tells the client only
 * "bad user name or password" or "not authorized" (§3.2.2.3); the log says more.
 */
const REFUSAL_HINTS: Partial<Record<RefusalReason, string>> = {
  'unknown-identity': 'no credential has this username (the identity id): issue one with `cosafe credentials add` (a device: --role device --site <site> --device <id>, plus --topic for a topic of its own; a bridge: --role bridge --site <site> --prefix <prefix>)',
  'wrong-secret': 'the secret does not match: `cosafe credentials rotate <id>` makes a new one, which the client must then use',
  revoked: 'this credential was revoked: issue a new one with another id',
  'anonymous-not-admitted': 'the client sent no username: every client but residents on the WebSocket listener logs in with a credential',
  'role-not-admitted': 'this listener does not admit the role: broker.listeners.<listener>.roles',
};

function loggable(username: string | undefined): string | undefined {
  if (username === undefined || username === '') return undefined;
  return ID_PATTERN.test(username) || (username.startsWith('@') && username.length <= 128) ? username : '(not an id)';
}
