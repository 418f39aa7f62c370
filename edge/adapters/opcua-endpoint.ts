import type { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import type { ClientSession, ClientSubscription, OPCUAClient, UserIdentityInfo } from 'node-opcua-client';
import type { Clock } from '../../core/clock.js';
import type { OpcuaConnectionConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { DeviceBinding } from '../device-binding.js';
import type { AdapterEndpointHealth } from './adapter.js';
import { describeOpcuaFailure, type OpcuaFailure, type OpcuaPhase } from './opcua-errors.js';
import { OpcuaPoints } from './opcua-points.js';
import { applicationUriOf, backoffDelay, formatSeconds, policyOf, type OpcuaLib, type OpcuaTiming } from './opcua-settings.js';

export type OpcuaEndpointState = 'connecting' | 'connected' | 'reconnecting' | 'backoff' | 'stopped';

export interface OpcuaEndpointHealth extends AdapterEndpointHealth {
  state: OpcuaEndpointState;
  securityMode: string;
  securityPolicy: string;
  user: string;
  lastValueAt: number | null;
  /** Repairs done by node-opcua (connection lost, then session and subscription back). */
  reconnects: number;
  /** Connections rebuilt from scratch by the adapter, when a repair failed or the link went stale. */
  rebuilds: number;
  /** Node ids that cannot be monitored, with the server's reason. */
  badNodes: Record<string, string>;
  /** Node ids whose value currently has a bad status, with the status. */
  badStatus: Record<string, string>;
}

export interface OpcuaEndpointOptions {
  url: string;
  connection: OpcuaConnectionConfig;
  devices: readonly DeviceBinding[];
  lib: OpcuaLib;
  /** A certificate store read afresh from `pkiDir`, one per connection built. */
  openCertificateStore(): Promise<OPCUACertificateManager>;
  /**
   * After every connection attempt: node-opcua writes the client certificate
   * and the servers' rejected certificates with the process's umask, and the
   * store must stay private.
   */
  afterAttempt?(): void;
  pkiDir: string;
  logger: Logger;
  clock: Clock;
  timing: OpcuaTiming;
  /** One data change of one node of one device; `value` is null when its status is bad. */
  onValue(binding: DeviceBinding, nodeId: string, value: unknown, time: number): void;
  /** The subscription is alive (a keep-alive or a notification): the devices behind it are reachable. */
  onAlive(): void;
  countError(kind: string): void;
}

class PhaseError extends Error {
  constructor(
    readonly phase: OpcuaPhase,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/**
 * One OPC-UA server endpoint: one client, one session, one subscription with a
 * monitored item per data point of every device on it.
 *
 * Healing is layered. node-opcua repairs a broken connection itself: it
 * reconnects with backoff, reactivates the session or, when the server has lost
 * it (a restart), creates a new one and transfers or recreates the subscription
 * (OPC-UA Part 4 §5.6.3, §5.13.7). This class watches that repair and does not
 * rely on it: when the repair reports an error, stalls, or the subscription goes
 * silent, the client is thrown away and everything is built again with backoff.
 */
export class OpcuaEndpoint {
  private state: OpcuaEndpointState = 'connecting';
  private since: number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private client: OPCUAClient | undefined;
  private certificateStore: OPCUACertificateManager | undefined;
  /** Each connection built gets a number; events of an older one are ignored. */
  private generation = 0;
  private broken: ((reason: string) => void) | undefined;
  private wake: (() => void) | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastLifeSignAt = 0;
  private lastLibraryActivityAt = 0;
  private channelBackAt: number | undefined;
  private lastLoggedDelay: number | undefined;
  private lastFailure: string | undefined;
  private lastError: string | undefined;
  private retryInMs: number | undefined;
  private reconnects = 0;
  private rebuilds = 0;
  private readonly points: OpcuaPoints;
  private readonly log: Logger;

  constructor(private readonly o: OpcuaEndpointOptions) {
    this.since = o.clock.now();
    this.log = o.logger.child({ endpoint: o.url });
    this.points = new OpcuaPoints({ devices: o.devices, lib: o.lib, logger: this.log, clock: o.clock, onValue: o.onValue, countError: o.countError });
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.broken?.('stopped');
    await this.teardown();
    await this.loop;
    this.setState('stopped');
  }

  health(): OpcuaEndpointHealth {
    const c = this.o.connection;
    return {
      address: this.o.url,
      state: this.state,
      since: this.since,
      devices: [...new Set(this.o.devices.map((d) => d.device.id))],
      securityMode: c.securityMode,
      securityPolicy: policyOf(c),
      user: c.username ?? 'anonymous',
      lastValueAt: this.points.lastValueAt,
      reconnects: this.reconnects,
      rebuilds: this.rebuilds,
      badNodes: Object.fromEntries(this.points.badNodes),
      badStatus: Object.fromEntries(this.points.badStatus),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.state === 'backoff' || this.state === 'reconnecting' ? (this.retryInMs !== undefined ? { retryInMs: this.retryInMs } : {}) : {}),
    };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      this.setState('connecting');
      try {
        try {
          await this.establish();
        } finally {
          this.o.afterAttempt?.();
        }
        attempt = 0;
        const reason = await new Promise<string>((resolve) => (this.broken = resolve));
        if (this.stopped) break;
        this.rebuilds++;
        this.lastError = `connection broken: ${reason}`;
        const delay = backoffDelay(attempt, this.o.timing);
        this.log.warn({ code: 'COSAFE_ERR_OPCUA_CONNECT', reason, retryInMs: delay }, `OPC-UA connection broken (${reason}); rebuilding client, session and subscription in ${formatSeconds(delay)}`);
      } catch (err) {
        if (this.stopped) break;
        this.fail(err instanceof PhaseError ? err : new PhaseError('connect', err), attempt);
      }
      await this.teardown();
      if (this.stopped) break;
      const delay = backoffDelay(attempt++, this.o.timing);
      this.retryInMs = delay;
      this.setState('backoff');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Client, channel, session, subscription, monitored items; throws a PhaseError. */
  private async establish(): Promise<void> {
    const { lib, timing, connection: c, url } = this.o;
    const gen = ++this.generation;
    const publishingInterval = clamp(this.points.fastestSamplingMs, 100, 1000);
    const maxKeepAliveCount = Math.max(1, Math.ceil(timing.keepAliveMs / publishingInterval));
    const applicationUri = c.certificateFile ? await inPhase('connect', applicationUriOf(c.certificateFile)) : undefined;
    // A fresh store each time: a certificate the operator just moved to trusted/
    // counts at the next attempt, with no file watcher to race against.
    const certificateStore = await inPhase('connect', this.o.openCertificateStore());
    this.certificateStore = certificateStore;
    const client = lib.OPCUAClient.create({
      applicationName: 'cosafe-gateway',
      // Part 6 §6.2.2: the ApplicationUri must be the URI in the certificate, or the server refuses it.
      ...(applicationUri ? { applicationUri } : {}),
      clientName: `cosafe ${url}`,
      // The server may advertise another host name than the one configured (NAT, DNS alias).
      endpointMustExist: false,
      securityMode: lib.MessageSecurityMode[c.securityMode],
      securityPolicy: lib.SecurityPolicy[policyOf(c)],
      clientCertificateManager: certificateStore,
      ...(c.certificateFile && c.privateKeyFile ? { certificateFile: c.certificateFile, privateKeyFile: c.privateKeyFile } : {}),
      // maxRetry bounds only the first connect, so that its error reaches the log
      // and our own backoff; once connected, node-opcua retries a lost connection
      // without limit using initialDelay/maxDelay.
      connectionStrategy: { maxRetry: 1, initialDelay: timing.initialDelayMs, maxDelay: timing.maxDelayMs, randomisationFactor: 0.1 },
      // OPC-UA Part 4 §5.6.2: the session outlives a short outage, so it can be reactivated.
      requestedSessionTimeout: Math.max(60_000, timing.keepAliveMs * 6),
    });
    this.client = client;
    this.watchClient(client, gen);
    await inPhase('connect', client.connect(url));

    const identity: UserIdentityInfo =
      c.username !== undefined ? { type: lib.UserTokenType.UserName, userName: c.username, password: c.password ?? '' } : { type: lib.UserTokenType.Anonymous };
    const session = await inPhase('session', client.createSession(identity));
    this.watchSession(session, gen);

    // OPC-UA Part 4 §5.13.2: the lifetime count must be at least three times the keep-alive count.
    const subscription = await inPhase(
      'subscription',
      session.createSubscription2({
        requestedPublishingInterval: publishingInterval,
        requestedMaxKeepAliveCount: maxKeepAliveCount,
        requestedLifetimeCount: maxKeepAliveCount * 12,
        maxNotificationsPerPublish: 1000,
        publishingEnabled: true,
        priority: 10,
      }),
    );
    this.watchSubscription(subscription, gen);
    await this.points.monitorAll(subscription, () => gen === this.generation && !this.stopped);

    if (gen !== this.generation || this.stopped) throw new PhaseError('connect', new Error('stopped while connecting'));
    this.lastLifeSignAt = this.lastLibraryActivityAt = this.o.clock.now();
    this.lastFailure = undefined;
    this.lastError = undefined;
    this.lastLoggedDelay = undefined;
    // A connection lost while the items were being created is already being repaired.
    if (this.state === 'connecting') this.setState('connected');
    this.log.info(
      { securityMode: c.securityMode, securityPolicy: policyOf(c), user: c.username ?? 'anonymous', nodes: this.points.size - this.points.badNodes.size, badNodes: this.points.badNodes.size },
      'OPC-UA connected; subscription active',
    );
    this.watchdog = setInterval(() => this.checkLiveness(gen), Math.max(100, Math.min(1000, timing.staleAfterMs / 4)));
  }

  private watchClient(client: OPCUAClient, gen: number): void {
    const mine = () => gen === this.generation && !this.stopped;
    client.on('connection_lost', () => {
      if (!mine()) return;
      this.o.countError('connect');
      this.lastLibraryActivityAt = this.o.clock.now();
      this.setState('reconnecting');
      this.log.warn({ code: 'COSAFE_ERR_OPCUA_CONNECT' }, 'OPC-UA connection lost; reconnecting');
    });
    client.on('backoff', (_count: number, delay: number) => {
      if (!mine() || this.state !== 'reconnecting') return;
      this.lastLibraryActivityAt = this.o.clock.now();
      this.retryInMs = delay;
      // One line per new delay: the delay grows to its cap, then the line stops.
      if (delay !== this.lastLoggedDelay) this.log.info({ retryInMs: delay }, `OPC-UA server not reachable; reconnecting with backoff ${formatSeconds(delay)}`);
      this.lastLoggedDelay = delay;
    });
    client.on('reconnection_attempt_has_failed', (err: Error) => {
      if (!mine()) return;
      this.lastLibraryActivityAt = this.o.clock.now();
      // The backoff lines already say the server is unreachable; anything else
      // (a new server certificate after a reinstall) needs the operator, so it is said once.
      const failure = describeOpcuaFailure('connect', err, { endpoint: this.o.url, pkiDir: this.o.pkiDir });
      this.lastError = failure.message;
      if (failure.code === 'COSAFE_ERR_OPCUA_CONNECT') return;
      // node-opcua would retry with the trust list it read at the start; a
      // rebuild reads the operator's decision from disk at every attempt.
      this.report(failure, backoffDelay(0, this.o.timing));
      this.breakWith(gen, failure.message);
    });
    client.on('after_reconnection', (err?: Error | null) => {
      if (!mine()) return;
      this.lastLibraryActivityAt = this.o.clock.now();
      if (err) return this.breakWith(gen, `reconnection failed: ${err.message}`);
      this.channelBackAt = this.o.clock.now();
    });
    client.on('connection_reestablished', () => {
      if (!mine()) return;
      this.reconnects++;
      this.channelBackAt = undefined;
      this.lastLoggedDelay = undefined;
      this.lastFailure = undefined;
      this.lastError = undefined;
      this.lastLifeSignAt = this.o.clock.now();
      this.setState('connected');
      this.log.info({ reconnects: this.reconnects }, 'OPC-UA connection re-established; subscription active');
    });
    client.on('reconnection_canceled', () => this.breakWith(gen, 'the client library cancelled its reconnection'));
    client.on('close', (err?: Error | null) => this.breakWith(gen, `connection closed${err ? `: ${err.message}` : ''}`));
  }

  private watchSession(session: ClientSession, gen: number): void {
    let sessionId = session.sessionId?.toString();
    session.on('session_restored', () => {
      if (gen !== this.generation) return;
      const now = session.sessionId?.toString();
      // Part 4 §5.6.3: ActivateSession on the new channel keeps the session; a
      // restarted server has lost it and node-opcua had to create another one.
      if (now !== sessionId) this.log.info('OPC-UA session recreated (the server had lost it)');
      else this.log.info('OPC-UA session reactivated on the new connection');
      sessionId = now;
    });
    session.on('session_closed', (status: unknown) => this.breakWith(gen, `the server closed the session (${String(status)})`));
  }

  private watchSubscription(subscription: ClientSubscription, gen: number): void {
    const alive = () => {
      if (gen !== this.generation) return;
      this.lastLifeSignAt = this.o.clock.now();
      this.o.onAlive();
    };
    subscription.on('keepalive', alive);
    subscription.on('received_notifications', alive);
    subscription.on('subscriptionId_changed', (id: number, previous: number) => {
      if (gen === this.generation) this.log.info({ subscriptionId: id, previous }, 'OPC-UA subscription recreated');
    });
    subscription.on('status_changed', (status: unknown) => {
      if (gen !== this.generation || this.stopped) return;
      this.o.countError('subscription');
      this.breakWith(gen, `the server ended the subscription (${String(status)})`);
    });
    subscription.on('terminated', () => this.breakWith(gen, 'the subscription was terminated'));
    subscription.on('internal_error', (err: Error) => {
      if (gen !== this.generation || this.stopped) return;
      this.o.countError('subscription');
      this.breakWith(gen, `subscription error: ${err.message}`);
    });
  }

  /** Catches what node-opcua's own repair does not: a silent link, a stalled repair. */
  private checkLiveness(gen: number): void {
    if (gen !== this.generation || this.stopped) return;
    const now = this.o.clock.now();
    const { timing } = this.o;
    const lifeSign = Math.max(this.lastLifeSignAt, this.points.lastChangeAt);
    if (this.state === 'connected' && now - lifeSign > timing.staleAfterMs) {
      this.o.countError('subscription');
      return this.breakWith(gen, `no data and no keep-alive for ${formatSeconds(now - lifeSign)}`);
    }
    if (this.state === 'reconnecting') {
      if (this.channelBackAt !== undefined && now - this.channelBackAt > timing.repairTimeoutMs) {
        this.o.countError('session');
        return this.breakWith(gen, `the connection came back but the session was not restored within ${formatSeconds(timing.repairTimeoutMs)}`);
      }
      const quietFor = Math.max(3 * timing.maxDelayMs, timing.repairTimeoutMs);
      if (now - this.lastLibraryActivityAt > quietFor) return this.breakWith(gen, `no reconnection attempt for ${formatSeconds(now - this.lastLibraryActivityAt)}`);
    }
  }

  private breakWith(gen: number, reason: string): void {
    if (gen !== this.generation || this.stopped || !this.broken) return;
    const broken = this.broken;
    this.broken = undefined;
    broken(reason);
  }

  private fail(err: PhaseError, attempt: number): void {
    const failure: OpcuaFailure = describeOpcuaFailure(err.phase, err.original, { endpoint: this.o.url, pkiDir: this.o.pkiDir });
    this.report(failure, backoffDelay(attempt, this.o.timing));
  }

  private report(failure: OpcuaFailure, delay: number): void {
    this.o.countError(failure.kind);
    this.lastError = failure.message;
    const key = `${failure.code} ${failure.message}`;
    // The same failure again is not news: one line when it first happens, then
    // one when the retry delay grows, then silence until something changes.
    if (key !== this.lastFailure) {
      this.log.error({ code: failure.code, retryInMs: delay }, `${failure.message}; retrying in ${formatSeconds(delay)}`);
    } else if (delay !== this.lastLoggedDelay) {
      this.log.info({ code: failure.code, retryInMs: delay }, `still failing (${failure.kind}); retrying every ${formatSeconds(delay)}`);
    } else {
      this.log.debug({ code: failure.code, retryInMs: delay }, failure.message);
    }
    this.lastFailure = key;
    this.lastLoggedDelay = delay;
  }

  /** Drops the current client; bounded, since a dead server never answers CloseSession. */
  private async teardown(): Promise<void> {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.generation++;
    this.channelBackAt = undefined;
    const client = this.client;
    const store = this.certificateStore;
    this.client = undefined;
    this.certificateStore = undefined;
    if (client) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.disconnect().catch((err: Error) => this.log.debug({ err: err.message }, 'OPC-UA disconnect failed')),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.timing.closeTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    await store?.dispose().catch((err: Error) => this.log.debug({ err: err.message }, 'OPC-UA certificate store not closed'));
  }

  private setState(state: OpcuaEndpointState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = this.o.clock.now();
  }
}

async function inPhase<T>(phase: OpcuaPhase, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw new PhaseError(phase, err);
  }
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
