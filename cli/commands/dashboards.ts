import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { readConfigFile } from '../../core/config.js';
import { CosafeError } from '../../core/errors.js';
import { DASHBOARDS_DIR, PASSWORD_ENV, TOKEN_ENV, type DatasourceTarget } from '../../dashboards/provisioning.js';

interface ExportOptions {
  config?: string;
  influxUrl?: string;
  database?: string;
  influxUser?: string;
  influxToken?: boolean;
  dashboardsPath?: string;
}

/** `cosafe dashboards export DIR`: the Grafana dashboards and their provisioning files, for a given InfluxDB. */
export function registerDashboards(program: Command): void {
  const dashboards = program.command('dashboards').description('Grafana dashboards of the time series (site, district, hub operations)');
  dashboards
    .command('export')
    .description('write the dashboards (JSON) and Grafana provisioning files (data source with a fixed uid, dashboard provider) into a directory')
    .argument('<dir>', 'directory to write into (created if missing; files of an earlier export are replaced)')
    .option('-c, --config <file>', "take the InfluxDB URL, database and user from this cosafe config's cloudSync.influx")
    .option('--influx-url <url>', 'InfluxDB URL as the Grafana server reaches it (default: the config\'s, else http://localhost:8086)')
    .option('--database <name>', "InfluxDB database (InfluxQL's db; default: the config's, else cosafe)")
    .option('--influx-user <user>', `InfluxDB 1.x user; Grafana reads the password from $${PASSWORD_ENV}`)
    .option('--influx-token', `InfluxDB 2.x/3.x: Grafana sends "Authorization: Token $${TOKEN_ENV}"`)
    .option('--dashboards-path <path>', `where the Grafana server finds the JSON (default: <dir>/${DASHBOARDS_DIR}, absolute)`)
    .addHelpText(
      'after',
      `
Writes <dir>/${DASHBOARDS_DIR}/*.json, <dir>/provisioning/datasources/cosafe.yaml and
<dir>/provisioning/dashboards/cosafe.yaml. Point Grafana's provisioning at <dir>/provisioning
(paths.provisioning in grafana.ini, or GF_PATHS_PROVISIONING): it loads the dashboards
into a folder "cosafe", with no import step. Secrets are never written into the files.

Examples:
  cosafe dashboards export /etc/cosafe/grafana --influx-url http://127.0.0.1:8086 --database cosafe
  cosafe dashboards export ./grafana --config cosafe.yaml --dashboards-path /var/lib/grafana/dashboards/cosafe`,
    )
    .action(async (dir: string, o: ExportOptions) => {
      // Loaded here, not with the CLI: only this command uses the Grafana SDK, and every hub and gateway
      // process paid for it (`cosafe demo`, one process: 241-250 MiB of RSS without it, 253-254 with it).
      const { exportFiles } = await import('../../dashboards/generate.js');
      const influx = o.config ? readConfigFile(o.config).cloudSync.influx : undefined;
      const influxUrl = o.influxUrl ?? influx?.url ?? 'http://localhost:8086';
      if (!isHttpUrl(influxUrl)) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `--influx-url: "${influxUrl}" is not an http(s) URL`);
      if (o.influxUser && o.influxToken) throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--influx-user and --influx-token exclude each other');
      const user = o.influxUser ?? (o.influxToken ? undefined : influx?.username);
      const token = o.influxToken ?? (user === undefined && influx?.token !== undefined);
      const target: DatasourceTarget = {
        influxUrl,
        database: o.database ?? influx?.database ?? 'cosafe',
        ...(user ? { auth: { type: 'basic' as const, user } } : token ? { auth: { type: 'token' as const } } : {}),
      };
      const out = resolve(dir);
      const files = exportFiles({ target, dashboardsPath: o.dashboardsPath ?? join(out, DASHBOARDS_DIR) });
      for (const f of files) {
        const path = join(out, f.path);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, f.content);
        process.stdout.write(`wrote ${path}\n`);
      }
      if (target.auth) process.stdout.write(`start Grafana with ${target.auth.type === 'basic' ? PASSWORD_ENV : TOKEN_ENV} set in its environment\n`);
    });
}

function isHttpUrl(s: string): boolean {
  // Not URL.parse(): Node 20 has only the constructor.
  try {
    return /^https?:$/.test(new URL(s).protocol);
  } catch {
    return false;
  }
}
