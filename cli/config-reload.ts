import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Config } from '../core/config.js';
import { isCosafeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Gateway } from '../edge/gateway.js';
import { loadSite } from './site-config.js';

export interface ReloadOptions {
  configFile: string;
  running: Config;
  gateway: Gateway;
  logger: Logger;
}

const SETTLE_MS = 300;

/**
 * Reloads the gateway's devices and profiles when the config file or the profile
 * directory changes, or on SIGHUP. A change that does not validate is rejected
 * with all its errors, and the running version stays in force. Returns a stop
 * function that removes the watchers and the signal handler.
 */
export function reloadOnChange(o: ReloadOptions): () => void {
  let running = o.running;
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<void> = Promise.resolve();
  const configFile = resolve(o.configFile);

  const reload = async (why: string) => {
    let next: Config;
    try {
      const site = loadSite(configFile);
      next = site.config;
      const { profiles, bindings } = site;
      const restartOnly = (['broker', 'http', 'cloudSync', 'dataDir'] as const).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(running[k]));
      if (
        next.gateway.id !== running.gateway.id ||
        next.gateway.site !== running.gateway.site ||
        JSON.stringify(next.gateway.brokerUrl) !== JSON.stringify(running.gateway.brokerUrl) ||
        next.gateway.deviceBrokerUrl !== running.gateway.deviceBrokerUrl ||
        JSON.stringify(next.gateway.outbox) !== JSON.stringify(running.gateway.outbox)
      ) {
        restartOnly.push('gateway' as never);
      }
      await o.gateway.reload(next.gateway, profiles);
      if (restartOnly.length) o.logger.warn({ sections: restartOnly }, 'these changes take effect after a restart');
      running = next;
      o.logger.info({ why, devices: bindings.length, profiles: profiles.size }, 'configuration reloaded');
    } catch (err) {
      if (!isCosafeError(err)) throw err;
      o.logger.error({ code: err.code, errors: err.details.length ? err.details : [err.message], why }, 'configuration change rejected; the running configuration stays in force');
    }
  };

  const schedule = (why: string) => {
    clearTimeout(timer);
    // Editors write a file in several steps (truncate, write, rename): wait until it settles.
    timer = setTimeout(() => {
      busy = busy.then(() => reload(why)).catch((err: Error) => o.logger.error({ err: err.message }, 'reload failed'));
    }, SETTLE_MS);
  };

  const watchers: FSWatcher[] = [];
  // Watch the directory, not the file: an editor that saves by rename replaces the inode.
  watchers.push(watch(dirname(configFile), (_event, name) => name === basename(configFile) && schedule('config file changed')));
  if (running.gateway.profileDir) watchers.push(watch(running.gateway.profileDir, (_event, name) => typeof name === 'string' && /\.ya?ml$/.test(name) && schedule('profile changed')));
  const onHup = () => schedule('SIGHUP');
  process.on('SIGHUP', onHup);

  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
    process.off('SIGHUP', onHup);
  };
}
