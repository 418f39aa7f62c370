import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, spawnLogged, waitUntil, type Spawned } from './processes.js';

export interface InfluxServer {
  url: string;
  port: number;
  /** InfluxQL query; returns the first result's series. */
  query(q: string, db?: string): Promise<InfluxSeries[]>;
  /** Stops the server but keeps its data, so `restart()` brings the same database back. */
  pause(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/**
 * A real InfluxDB 1.x server (Debian package `influxdb`) on a temporary
 * directory and free loopback ports, ready when it answers /ping.
 */
export async function startInfluxDB(): Promise<InfluxServer> {
  const influxd = requireBinary('influxd', 'influxdb');
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-influx-'));
  const port = await freePort();
  const rpcPort = await freePort();
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
`,
  );
  const url = `http://127.0.0.1:${port}`;
  let proc: Spawned | undefined;
  const launch = async () => {
    proc = spawnLogged(influxd, ['-config', conf]);
    const p = proc;
    await waitUntil(
      `influxd to answer ${url}/ping`,
      async () => {
        if (p.child.exitCode !== null) throw new Error(`influxd exited with ${p.child.exitCode}: ${p.output().slice(-2000)}`);
        return (await fetch(`${url}/ping`)).status === 204;
      },
      30_000,
      100,
    );
  };
  await launch();
  return {
    url,
    port,
    async query(q, db = 'cosafe') {
      const res = await fetch(`${url}/query?${new URLSearchParams({ q, db, epoch: 'ms' })}`);
      const body = (await res.json()) as { results?: { error?: string; series?: InfluxSeries[] }[]; error?: string };
      const error = body.error ?? body.results?.[0]?.error;
      if (error) throw new Error(`InfluxQL "${q}" failed: ${error}`);
      return body.results?.[0]?.series ?? [];
    },
    async pause() {
      await proc?.stop('SIGTERM', 10_000);
    },
    async restart() {
      await launch();
    },
    async stop() {
      await proc?.stop('SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
