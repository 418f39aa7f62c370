import { hostname } from 'node:os';
import type { Config } from '../../core/config.js';

/**
 * This cloud-sync process's name in its own broker sessions (the dispatch
 * link's `cosafe-cloud-sync-dispatch-<instance>`, the feeds' client) and, with
 * partitions, in Redis. It must be stable across restarts: a persistent
 * session (the dispatch link's, where fire departments' acknowledgements wait)
 * is found again by its name. Without partitions it is what it always was.
 */
export function cloudSyncInstance(config: Config): string {
  const partitions = config.cloudSync.partitions;
  if (!partitions) return process.env.COSAFE_INSTANCE ?? 'main';
  return partitions.workerId ?? process.env.COSAFE_INSTANCE ?? hostname();
}
