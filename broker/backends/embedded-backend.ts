import { join } from 'node:path';
import { isTelemetryTopic } from '../lanes.js';
import { SqlitePersistence } from '../sqlite-persistence.js';
import type { BrokerBackend } from './backend.js';

/**
 * One broker on its own (the default): sessions, queues, retained messages and
 * the journal in SQLite files of the data directory (the telemetry lane's in a
 * file of its own on a worker thread), or in memory without a data directory.
 */
export function embeddedBackend(dataDir: string | undefined): BrokerBackend {
  const persistence = dataDir ? new SqlitePersistence(join(dataDir, 'broker.db'), { telemetryPath: join(dataDir, 'broker-telemetry.db'), isTelemetry: isTelemetryTopic }) : undefined;
  return {
    kind: 'embedded',
    persistence,
    mq: undefined,
    brokerId: undefined,
    heartbeatMs: 60_000,
    journal: persistence,
    loginLimits: (local) => local,
    close: async () => {
      await persistence?.destroy();
    },
  };
}
