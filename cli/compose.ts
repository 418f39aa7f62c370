import { startHubBroker, type HubBroker } from '../broker/hub.js';
import { startCloudSync, type CloudSync } from '../cloud-sync/cloud-sync.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { CosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { Metrics } from '../core/metrics.js';
import { loadBuiltinProfiles, loadProfileDir } from '../device-profiles/loader.js';
import type { Profile } from '../device-profiles/schema.js';
import { Gateway } from '../edge/gateway.js';
import { startGatewayStatus } from './gateway-status.js';

export type Role = 'broker' | 'gateway' | 'cloud-sync';

export interface Stack {
  broker?: HubBroker;
  gateway?: Gateway;
  cloudSync?: CloudSync;
  metrics: Metrics;
  /** The broker URL the parts use. */
  brokerUrl: string;
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
export async function startStack(config: Config, roles: readonly Role[], logger: Logger, clock: Clock = systemClock): Promise<Stack> {
  const metrics = new Metrics();
  const stack: Stack = { metrics, brokerUrl: '', stop: async () => {} };
  const stoppers: (() => Promise<void>)[] = [];
  stack.stop = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping'));
  };
  try {
    if (roles.includes('broker')) {
      stack.broker = await startHubBroker({
        host: config.broker.host,
        port: config.broker.port,
        logger: logger.child({ part: 'broker' }),
        metrics,
        ...(config.broker.persistence === 'disk' ? { dataDir: config.dataDir } : {}),
      }).catch(
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') {
            throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `broker port ${config.broker.port} is already in use; choose another with --port (or broker.port)`, { cause: err });
          }
          throw err;
        },
      );
      stoppers.push(() => stack.broker!.close());
    }
    const brokerFor = (url: string | undefined, part: string) => {
      const resolved = url ?? stack.broker?.url;
      if (!resolved) throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${part}.brokerUrl is required when the broker role does not run in this process`);
      return resolved;
    };
    if (roles.includes('cloud-sync')) {
      const brokerUrl = brokerFor(config.cloudSync.brokerUrl, 'cloudSync');
      stack.brokerUrl = brokerUrl;
      stack.cloudSync = await startCloudSync({ config, brokerUrl, logger: logger.child({ part: 'cloud-sync' }), metrics, clock }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `HTTP port ${config.http.port} is already in use; choose another with --http-port (or http.port)`, { cause: err });
        }
        throw err;
      });
      stoppers.push(() => stack.cloudSync!.stop());
    }
    if (roles.includes('gateway')) {
      const brokerUrl = brokerFor(config.gateway.brokerUrl, 'gateway');
      stack.brokerUrl = brokerUrl;
      stack.gateway = new Gateway({ config: config.gateway, brokerUrl, profiles: loadProfiles(config), stateDir: config.dataDir, logger: logger.child({ part: 'gateway' }), clock, metrics });
      await stack.gateway.start();
      stoppers.push(() => stack.gateway!.stop());
      if (!roles.includes('cloud-sync')) {
        const status = await startGatewayStatus({ host: config.http.host, port: config.http.port, gateway: stack.gateway, metrics, logger: logger.child({ part: 'gateway' }) });
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
