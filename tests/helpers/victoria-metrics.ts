import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, spawnLogged, waitUntil, type Spawned } from './processes.js';

export interface VictoriaMetricsServer {
  url: string;
  /**
   * Raw samples of the series matching a PromQL series selector, e.g.
   * `reading_value{device="temp-1"}`, from /api/v1/export (JSON lines).
   */
  export(selector: string): Promise<{ metric: Record<string, string>; values: number[]; timestamps: number[] }[]>;
  /** Stops the server but keeps its data, so `restart()` brings it back. */
  pause(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real VictoriaMetrics (Debian package `victoria-metrics`), a server that speaks
 * InfluxDB's v2 write API (/api/v2/write) but not InfluxQL. It stores line
 * protocol field `f` of measurement `m` as the series `m_f`, tags as labels; a
 * reading is `reading_value{site, device, metric, profile}`. With
 * -dedup.minScrapeInterval=1ms, samples of one series at the same millisecond are
 * one sample, as a point with the same time is one point in InfluxDB.
 */
export async function startVictoriaMetrics(): Promise<VictoriaMetricsServer> {
  const binary = requireBinary('victoria-metrics', 'victoria-metrics');
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-vm-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc: Spawned | undefined;
  const launch = async () => {
    proc = spawnLogged(binary, [
      `-storageDataPath=${dir}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      '-dedup.minScrapeInterval=1ms',
      // Samples may carry any past time (the device's reading time).
      '-retentionPeriod=100y',
      '-search.latencyOffset=0s',
      '-search.disableCache',
      '-loggerLevel=ERROR',
    ]);
    const p = proc;
    await waitUntil(
      `victoria-metrics to answer ${url}/health`,
      async () => {
        if (p.child.exitCode !== null) throw new Error(`victoria-metrics exited with ${p.child.exitCode}: ${p.output().slice(-2000)}`);
        return (await fetch(`${url}/health`)).ok;
      },
      30_000,
      100,
    );
  };
  await launch();
  return {
    url,
    async export(selector) {
      // Samples just written sit in memory for a few seconds before a search sees them.
      await fetch(`${url}/internal/force_flush`);
      const res = await fetch(`${url}/api/v1/export`, { method: 'POST', body: new URLSearchParams({ 'match[]': selector }) });
      if (!res.ok) throw new Error(`export ${selector} failed: HTTP ${res.status} ${await res.text()}`);
      return (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { metric: Record<string, string>; values: number[]; timestamps: number[] });
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
