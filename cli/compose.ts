import { readFileSync } from 'node:fs';
import { CredentialStore, credentialStorePath, type StoredCredential } from '../broker/auth/credential-store.js';
import type { CredentialRole, Identity } from '../broker/auth/identity.js';
import { VerifiedSecrets } from '../broker/auth/verified-secrets.js';
import { AddressGuard } from '../broker/limits/address-guard.js';
import { startHubBroker, type HubBroker } from '../broker/hub.js';
import { startCloudSync, type CloudSync } from '../cloud-sync/cloud-sync.js';
import type { CredentialVerifier } from '../cloud-sync/http/http-auth.js';
import { SiteRegistry } from '../cloud-sync/registry/site-registry.js';
import { SiteStore, siteStorePath } from '../cloud-sync/registry/site-store.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { CosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { Metrics } from '../core/metrics.js';
import { ensurePrivateDir } from '../core/private-files.js';
import { configureWorkerThread } from '../core/worker-host.js';
import type { MqttClientAuth } from '../core/mqtt-client-auth.js';
import type { BrokerUrls } from '../core/mqtt-reconnect.js';
import { loadBuiltinProfiles, loadProfileDir } from '../device-profiles/loader.js';
import type { Profile } from '../device-profiles/schema.js';
import type { Gateway } from '../edge/gateway.js';
import { startGatewayStatus } from './gateway-status.js';
import { issueOperatorToken, withOperator } from './operator-token.js';

export type Role = 'broker' | 'gateway' | 'cloud-sync';

export interface Stack {
  broker?: HubBroker;
  gateway?: Gateway;
  cloudSync?: CloudSync;
  metrics: Metrics;
  /** The broker URL the parts use. */
  brokerUrl: string;
  /**
   * Issues an internal identity on the embedded broker (for the demo's
   * simulated sensors); undefined when the broker runs elsewhere.
   */
  issueInternal?: (identity: Identity) => { username: string; password: string };
  stop(): Promise<void>;
}

/** Built-in profiles, plus (and overridden by) the user's profile directory. */
export function loadProfiles(config: Config): Map<string, Profile> {
  const profiles = loadBuiltinProfiles();
  if (config.gateway.profileDir) for (const [id, p] of loadProfileDir(config.gateway.profileDir)) profiles.set(id, p);
  return profiles;
}

/**
 * The composition root: starts the roles asked for, in flow order (broker,
 * cloud-sync, gateway), and stops them in reverse so nothing in flight is cut off.
 */
/** Command-line flags that set ports, for hints when a port is taken (only `cosafe demo` has them). */
export interface PortFlags {
  mqtt?: string;
  http?: string;
}

/** What to change when `port` is taken: the flag that sets it, if the command has one, and the config field. */
function portHint(config: Config, port: number | undefined, flags: PortFlags): string {
  const { tcp, tls, ws } = config.broker.listeners;
  const field =
    tls.enabled && tls.port === port ? 'broker.listeners.tls.port'
    : ws.enabled && ws.port === port ? 'broker.listeners.ws.port'
    : tcp.port === config.broker.port ? 'broker.port' : 'broker.listeners.tcp.port';
  const flag = field === 'broker.port' || field === 'broker.listeners.tcp.port' ? flags.mqtt : undefined;
  return flag ? `choose another with ${flag} (or ${field} in the config file)` : `choose another in the config file: ${field}`;
}

export async function startStack(config: Config, roles: readonly Role[], logger: Logger, clock: Clock = systemClock, flags: PortFlags = {}): Promise<Stack> {
  // 0700 before any part writes into it, whatever the umask; a directory that cannot be private is refused here.
  ensurePrivateDir(config.dataDir);
  // Before any part attaches a task to the worker thread (the broker's telemetry queue, cloud-sync's telemetry lane).
  configureWorkerThread({ nice: config.telemetryThreadNice });
  const metrics = new Metrics({ process: true });
  const stack: Stack = { metrics, brokerUrl: '', stop: async () => {} };
  // One memory of verified secrets for the process: the broker and the HTTP API check the same credentials.db.
  const verified = new VerifiedSecrets();
  const stoppers: (() => Promise<void>)[] = [];
  stack.stop = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping'));
  };
  try {
    if (roles.includes('broker')) {
      // The broker checks each gateway's site against the registry (cloud-sync's), through a lookup given here.
      const siteStore = SiteStore.open(siteStorePath(config.dataDir));
      stoppers.push(async () => siteStore.close());
      const registry = new SiteRegistry({ store: siteStore, logger: logger.child({ part: 'broker' }), metrics });
      stack.broker = await startHubBroker({
        siteDistrict: (site) => registry.lookup(site)?.district,
        config: config.broker,
        credentialsPath: credentialStorePath(config.dataDir),
        verified,
        logger: logger.child({ part: 'broker' }),
        metrics,
        clock,
        ...(config.broker.persistence === 'disk' ? { dataDir: config.dataDir } : {}),
      }).catch((err: NodeJS.ErrnoException & { port?: number }) => {
        if (err.code === 'EADDRINUSE') {
          throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `broker port ${err.port ?? ''} is already in use; ${portHint(config, err.port, flags)}`, { cause: err });
        }
        throw err;
      });
      const broker = stack.broker;
      stack.issueInternal = (identity) => broker.ephemeral.issue(identity);
      stoppers.push(() => broker.close());
    }
    const brokerFor = (url: BrokerUrls | undefined, part: string): BrokerUrls => {
      if (url) return url;
      if (!stack.broker) throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${part}.brokerUrl is required when the broker role does not run in this process`);
      // The parts next to the broker connect over loopback TCP.
      if (!stack.broker.url) throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${part} connects to the embedded broker over TCP, but broker.listeners.tcp is off: turn it on (host 127.0.0.1 keeps it local) or set ${part}.brokerUrl`);
      return stack.broker.url;
    };
    /**
     * A part's login: its configured credentials or client certificate, or,
     * when it connects to the broker of this process, an internal identity
     * issued here and now (so the embedded default needs no setup).
     */
    const authFor = (part: 'gateway' | 'cloudSync', internal: Identity): MqttClientAuth => {
      const c = config[part];
      const tls = readClientTls(c.tls, part);
      if (c.credentials) return { ...tls, username: c.credentials.username, password: c.credentials.password };
      if (stack.broker && !c.brokerUrl) return { ...tls, ...stack.broker.ephemeral.issue(internal) };
      if (tls.cert) return tls;
      throw new CosafeError(
        'COSAFE_ERR_CONFIG_INVALID',
        `${part}.credentials is required when ${part} connects to a broker outside this process (create them on the hub: cosafe credentials add --role ${part === 'gateway' ? 'gateway --site <site> --gateway <id>' : 'service --id cloud-sync'})`,
      );
    };
    if (roles.includes('cloud-sync')) {
      const brokerUrl = brokerFor(config.cloudSync.brokerUrl, 'cloudSync');
      const brokerAuth = authFor('cloudSync', { role: 'service', id: '@cloud-sync' });
      stack.brokerUrl = typeof brokerUrl === 'string' ? brokerUrl : brokerUrl[0]!;
      const credentials = CredentialStore.open(credentialStorePath(config.dataDir), clock, { verified });
      stoppers.push(async () => credentials.close());
      // This run's operator token, for `cosafe status` and `cosafe readings` on this machine (operator-token.ts).
      const operator = issueOperatorToken(config.dataDir);
      stoppers.push(async () => operator.remove());
      const verifier = withOperator(credentialVerifier(credentials), operator.secret);
      // The HTTP sign-ins are limited per address and identity by the broker's own guard, with the http.limits numbers.
      const loginGuard = new AddressGuard({ attempts: Number.MAX_SAFE_INTEGER, authFailures: config.http.limits.authFailuresPerMinute, failedIdentities: config.http.limits.authFailedIdentitiesPerMinute, windowMs: 60_000, clock });
      stack.cloudSync = await startCloudSync({ config, brokerUrl, brokerAuth, logger: logger.child({ part: 'cloud-sync' }), metrics, clock, verifier, loginGuard }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          const how = flags.http ? `choose another with ${flags.http} (or http.port in the config file)` : 'choose another in the config file: http.port';
          throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `HTTP port ${config.http.port} is already in use; ${how}`, { cause: err });
        }
        throw err;
      });
      stoppers.push(() => stack.cloudSync!.stop());
    }
    if (roles.includes('gateway')) {
      const brokerUrl = brokerFor(config.gateway.brokerUrl, 'gateway');
      const { site, id } = config.gateway;
      const brokerAuth = authFor('gateway', { role: 'gateway', id: `@gateway:${site}:${id}`, site, gateway: id });
      stack.brokerUrl = typeof brokerUrl === 'string' ? brokerUrl : brokerUrl[0]!;
      // Loaded only when this process runs a gateway: its transports (OPC-UA, serial, Modbus) are most of the code, and a hub needs none of it.
      const { Gateway } = await import('../edge/gateway.js');
      stack.gateway = new Gateway({ config: config.gateway, brokerUrl, brokerAuth, profiles: loadProfiles(config), stateDir: config.dataDir, logger: logger.child({ part: 'gateway' }), clock, metrics });
      await stack.gateway.start();
      stoppers.push(() => stack.gateway!.stop());
      if (!roles.includes('cloud-sync')) {
        const status = await startGatewayStatus({ host: config.http.host, port: config.http.port, gateway: stack.gateway, metrics, logger: logger.child({ part: 'gateway' }) }).catch(
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'EADDRINUSE') throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `HTTP port ${config.http.port} (the gateway's /health and /metrics) is already in use; choose another in the config file: http.port`, { cause: err });
            throw err;
          },
        );
        stoppers.push(() => status.close());
      }
    }
    stack.brokerUrl ||= stack.broker?.url ?? '';
    return stack;
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** The HTTP API's view of the broker's credential store: the same identities, no second user database. */
export function credentialVerifier(store: CredentialStore): CredentialVerifier {
  const principalOf = (c: StoredCredential) => {
    const i = c.identity;
    const district = (i as { district?: string }).district;
    return { id: i.id, role: i.role as CredentialRole, ...(district ? { district } : {}), ...(i.role === 'owner' ? { sites: i.sites } : {}) };
  };
  return {
    async verify(id, secret) {
      const c = await store.verify(id, secret);
      if (!c || c.identity.role === 'resident') return undefined;
      return { principal: principalOf(c), generation: c.generation };
    },
    current(id) {
      const c = store.find(id);
      return c && { generation: c.generation, revoked: c.revokedAt !== null };
    },
    identity(id) {
      const c = store.find(id);
      if (!c || c.revokedAt !== null || c.identity.role === 'resident') return undefined;
      return { principal: principalOf(c), generation: c.generation };
    },
  };
}

function readClientTls(tls: Config['gateway']['tls'], part: string): MqttClientAuth {
  const out: MqttClientAuth = {};
  for (const key of ['ca', 'cert', 'key'] as const) {
    const file = tls?.[key];
    if (!file) continue;
    try {
      out[key] = readFileSync(file);
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_TLS_FILES', `cannot read ${part}.tls.${key} ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}
