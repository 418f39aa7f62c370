import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { Authenticator } from './auth/authenticator.js';
import { CredentialStore } from './auth/credential-store.js';
import type { Identity } from './auth/identity.js';
import { EphemeralIdentities } from './auth/ephemeral-identities.js';
import { createAuthHooks, isReported } from './auth/hooks.js';
import { RevocationWatcher } from './auth/revocation-watcher.js';
import { Sessions } from './auth/sessions.js';
import type { VerifiedSecrets } from './auth/verified-secrets.js';
import { Connections } from './connections.js';
import { embeddedBackend } from './backends/embedded-backend.js';
import { redisBackend } from './backends/redis-backend.js';
import type { SharedCredentials } from './backends/backend.js';
import { AddressGuard } from './limits/address-guard.js';
import { localLoginLimits } from './limits/login-limits.js';
import { PacketTooLargeError } from './limits/frame-guard.js';
import { TelemetryWindow } from './limits/telemetry-window.js';
import { UplinkWindow } from './limits/uplink-window.js';
import { keepSessionOrder } from './session-order.js';
import type { Listener, ListenerName } from './listeners/connection-info.js';
import { startTcpListener } from './listeners/tcp.js';
import { startTlsListener } from './listeners/tls.js';
import { startWsListener } from './listeners/ws.js';
import { persistBeforeAck } from './persist-before-ack.js';
import { SecurityEvents, type LimitName } from './security-events.js';

export interface HubBrokerOptions {
  config: Config['broker'];
  /** The credential store file (`<dataDir>/credentials.db`); without one, only internal identities and residents get in. */
  credentialsPath?: string;
  /** Secrets verified in this process, shared with the HTTP API of the same process (see VerifiedSecrets). */
  verified?: VerifiedSecrets;
  /** Internal identities of this process (see EphemeralIdentities); a fresh set by default. */
  ephemeral?: EphemeralIdentities;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Keep sessions and queued messages in `<dataDir>/broker.db` (survive a crash); without it, in memory. */
  dataDir?: string;
  /**
   * The district the hub's site registry gives a site (undefined: not
   * registered), injected by the composition root. A gateway of an unregistered
   * site, or one whose credential names another district, is admitted (its
   * alarms must get through) and raised loudly.
   */
  siteDistrict?: (site: string) => string | undefined;
}

export interface HubBroker {
  /** The TCP port actually bound (useful with port 0); 0 when the TCP listener is off. */
  readonly port: number;
  /** The TCP URL the parts in this process connect to; '' when the TCP listener is off. */
  readonly url: string;
  /** Every listener that runs, with its port and URL. */
  readonly listeners: Readonly<Partial<Record<ListenerName, { port: number; url: string }>>>;
  /** Where the composition root issues internal identities for the parts it runs next to the broker. */
  readonly ephemeral: EphemeralIdentities;
  connectedClients(): number;
  /** Re-reads the credential store now (the broker also does so every `revocationCheckMs`). */
  checkCredentials(): void;
  close(): Promise<void>;
}

/** How long shutting down waits for Aedes to close its sessions. */
const AEDES_CLOSE_LIMIT_MS = 10_000;
/** Aedes' own limit errors, to count them as limits rather than as protocol errors. */
const AEDES_LIMITS: [RegExp, LimitName][] = [
  [/^Client queue limit reached/, 'queue'],
  [/^maxInflightInbound exceeded/, 'inflight'],
  [/too many levels/, 'topic-levels'],
];

/**
 * The hub's Aedes broker: the only way into and out of the hub. Every listener
 * (TCP, TLS, WebSocket) admits the roles its config names; every client
 * authenticates (except anonymous residents where admitted) and is held to the
 * ACL of its role and to the limits, so one client's misbehaviour costs nobody
 * else anything.
 */
export async function startHubBroker(o: HubBrokerOptions): Promise<HubBroker> {
  const { config, logger, metrics } = o;
  const { limits } = config;
  const clock = o.clock ?? systemClock;
  const ephemeral = o.ephemeral ?? new EphemeralIdentities();
  const events = new SecurityEvents(metrics, logger, clock);
  const sessions = new Sessions();
  const addressGuard = new AddressGuard({
    attempts: limits.connectAttemptsPerMinute,
    authFailures: limits.authFailuresPerMinute,
    failedIdentities: limits.authFailedIdentitiesPerMinute,
    windowMs: 60_000,
    clock,
  });
  const store = o.credentialsPath ? CredentialStore.open(o.credentialsPath, clock, o.verified ? { verified: o.verified } : {}) : undefined;
  const authenticator = new Authenticator({ store, ephemeral });

  let aedes: Aedes | undefined;
  const connections = new Connections({ limits, addressGuard, events, metrics, handle: (stream: Duplex) => aedes?.handle(stream) });
  const checkGateway = (identity: Identity) => {
    if (identity.role !== 'gateway' || !o.siteDistrict) return;
    const district = o.siteDistrict(identity.site);
    if (district === undefined) {
      metrics.inc('cosafe_site_problems_total', { problem: 'unregistered' });
      logger.error({ code: 'COSAFE_ERR_SITE_UNREGISTERED', identity: identity.id, site: identity.site }, `gateway of site "${identity.site}", which is not in the site registry: its alarms go to every fire department (cosafe sites add)`);
    } else if (identity.district !== undefined && identity.district !== district) {
      metrics.inc('cosafe_site_problems_total', { problem: 'district-mismatch' });
      logger.error(
        { code: 'COSAFE_ERR_SITE_DISTRICT_MISMATCH', identity: identity.id, site: identity.site, credential: identity.district, registry: district },
        `gateway credential says district "${identity.district}", the site registry "${district}": alarms go to "${district}"`,
      );
    }
  };
  // A cluster of brokers on one Redis, or this broker alone (broker/backends/).
  const backend = await (config.cluster ? redisBackend(config.cluster, logger) : Promise.resolve(embeddedBackend(o.dataDir))).catch((err: unknown) => {
    store?.close();
    throw err;
  });
  // Alone: this broker's counts, as ever; in a cluster: counted in Redis for every broker at once.
  const loginLimits = backend.loginLimits(localLoginLimits({ addressGuard, sessions }), limits);
  const hooks = createAuthHooks({ authenticator, sessions, infoOf: (c) => connections.infoOf(c), limits, loginLimits, events, clock, onAdmitted: checkGateway });

  const recheck = () => {
    for (const session of sessions.all()) {
      const verdict = authenticator.recheck(session);
      if (verdict === 'ok') {
        // A device or bridge added with its own topic or prefix: its gateway may read it from now on (its MQTT adapter retries a refused subscription).
        session.deviceTopics = authenticator.deviceTopicsFor(session.identity);
        continue;
      }
      events.sessionEnded(session, verdict);
      sessions.remove(session);
      session.client.close();
    }
  };
  // In a cluster, a change made to this broker's file (the CLI) is also handed to the other brokers.
  let shared: SharedCredentials | undefined;
  const localChange = () => {
    recheck();
    void shared?.localChanged();
  };
  const watcher = store ? new RevocationWatcher({ store, everyMs: config.revocationCheckMs, logger, onChange: localChange }) : undefined;

  const listeners: Listener[] = [];
  let journal: { stop(): void } | undefined;
  const stop = async () => {
    watcher?.stop();
    shared?.stop();
    journal?.stop();
    // Stop accepting and end every connection, including half-open ones, then the broker itself.
    const closing = listeners.splice(0).map((l) => l.close());
    connections.destroyAll();
    await Promise.all(closing);
    if (aedes) {
      // Aedes finishes closing once every client's subscriptions are removed from the persistence: with Redis,
      // a command whose answer was lost (an outage just before) would hold the shutdown for ever. Past the
      // limit the rest closes anyway (the backend drops its connections); the sessions stay as Redis has them.
      const closed = new Promise<void>((resolve) => aedes!.close(() => resolve())).then(() => true);
      if (!(await Promise.race([closed, delay(AEDES_CLOSE_LIMIT_MS, false, { ref: false })]))) {
        logger.warn({ limitMs: AEDES_CLOSE_LIMIT_MS }, 'the broker did not finish closing its sessions in time (its persistence did not answer); closing the rest');
      }
    }
    for (const s of sessions.all()) sessions.remove(s);
    store?.close();
    await loginLimits.close();
    await backend.close();
  };

  try {
    // Before any listener opens: the credentials issued on other brokers are in this broker's file by then.
    if (store && backend.shareCredentials) shared = await backend.shareCredentials({ store, metrics, onChange: recheck });
    // mqtt-packet writes packet ids from a table of 65,536 two-byte Buffers it builds at its first write unless
    // told not to (mqtt.js turns it off in its client's constructor, so whether a hub had it depended on which
    // came first). Kept for the life of the process, it was 7 MiB of the hub's old space, marked at every full
    // collection, to save allocating two bytes per packet id.
    mqttPacket.writeToStream.cacheNumbers = false;
    aedes = await Aedes.createBroker({
      ...hooks,
      ...(backend.persistence ? { persistence: backend.persistence } : {}),
      ...(backend.mq ? { mq: backend.mq } : {}),
      ...(backend.brokerId ? { id: backend.brokerId } : {}),
      // A frozen subscriber must not stall delivery to everyone else.
      drainTimeout: 30_000,
      // No cap on the deliveries in progress (0). With a cap, mqemitter keeps what is over it in an array it
      // shift()s once per message: under a fleet's flood that queue held thousands of readings, the shifts
      // took a fifth of the broker's CPU, and an alarm emitted meanwhile waited behind all of them. What is in
      // flight is bounded anyway: Aedes reads a client's next packets only once the last read's are handled.
      concurrency: 0,
      // In a cluster, the others publish a dead broker's wills (a gateway's status turns offline) after 3 missed beats.
      heartbeatInterval: backend.heartbeatMs,
      connectTimeout: limits.connectTimeoutMs,
      queueLimit: limits.queueLimit,
      maxInflightInbound: limits.maxInflightInbound,
      maxTopicLevels: limits.maxTopicLevels,
    });
    const onError = (client: { id?: string | null; conn?: object } | null, err: Error) => {
      // Refusals, denials and oversized packets were counted and logged where they happened.
      if (isReported(err) || err instanceof PacketTooLargeError) return;
      const address = (client?.conn && connections.infoOf(client.conn)?.address) ?? 'unknown';
      const limit = AEDES_LIMITS.find(([re]) => re.test(err.message))?.[1];
      if (limit) events.limit(limit, address, { client: client?.id, address, err: err.message });
      else events.clientError(address, { client: client?.id, address, err: err.message });
    };
    // Aedes' own errors (in a cluster: its periodic sweep of dead brokers' wills, when Redis is away). Without
    // a listener Aedes' emit throws, out of a promise handler: an unhandled rejection, which ends the process.
    let brokerErrorLogged = 0;
    (aedes as unknown as EventEmitter).on('error', (err: Error) => {
      metrics.inc('cosafe_broker_internal_errors_total');
      if (Date.now() - brokerErrorLogged < 60_000) return;
      brokerErrorLogged = Date.now();
      logger.error({ code: 'COSAFE_ERR_BROKER_INTERNAL', err: err.message }, 'broker error (logged once a minute, counted in cosafe_broker_internal_errors_total)');
    });
    aedes.on('clientError', onError);
    aedes.on('connectionError', onError);
    aedes.on('client', (client) => logger.debug({ client: client.id, identity: sessions.get(client)?.identity.id }, 'client connected'));
    aedes.on('clientDisconnect', (client) => logger.debug({ client: client.id }, 'client disconnected'));

    // After the auth hooks and before persist-before-ack: a batch held back is not queued nor acknowledged yet.
    new TelemetryWindow({ maxBytes: limits.telemetryWindowBytes, metrics }).install(aedes);
    new UplinkWindow({ maxInflight: limits.uplinkWindow, metrics, clock }).install(aedes);
    keepSessionOrder(aedes);
    // After the auth hooks (it wraps authorizePublish) and before any listener opens, so what an earlier
    // version acknowledged before a crash is queued again before anyone connects.
    if (backend.journal) journal = await persistBeforeAck(aedes, backend.journal, logger, metrics);

    const { tcp, tls, ws } = config.listeners;
    if (tcp.enabled) listeners.push(await startTcpListener({ host: tcp.host, port: tcp.port, roles: tcp.roles, gate: connections }));
    if (tls.enabled) {
      listeners.push(
        await startTlsListener({
          host: tls.host,
          port: tls.port,
          roles: tls.roles,
          cert: tls.cert!,
          key: tls.key!,
          ...(tls.ca ? { ca: tls.ca } : {}),
          requestClientCert: tls.requestClientCert,
          handshakeTimeoutMs: limits.connectTimeoutMs,
          gate: connections,
        }),
      );
    }
    if (ws.enabled) listeners.push(await startWsListener({ host: ws.host, port: ws.port, path: ws.path, roles: ws.roles, maxPacketBytes: limits.maxPacketBytes, gate: connections }));
    watcher?.start();
  } catch (err) {
    await stop();
    throw err;
  }

  const byName = Object.fromEntries(listeners.map((l) => [l.name, { port: l.port, url: l.url }])) as HubBroker['listeners'];
  for (const l of listeners) logger.info({ listener: l.name, url: l.url, roles: config.listeners[l.name].roles }, `broker listening (${l.name})`);
  if (!store) logger.warn('no credential store: only internal identities (and residents, where admitted) can log in');

  return {
    port: byName.tcp?.port ?? 0,
    url: byName.tcp?.url ?? '',
    listeners: byName,
    ephemeral,
    connectedClients: () => aedes!.connectedClients,
    checkCredentials: () => watcher?.check(),
    close: stop,
  };
}
