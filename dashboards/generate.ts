import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { districtDashboard } from './district-dashboard.js';
import { hubDashboard } from './hub-dashboard.js';
import { DASHBOARDS_DIR, datasourceYaml, providerYaml, type DatasourceTarget } from './provisioning.js';
import { siteDashboard } from './site-dashboard.js';

/** Every cosafe dashboard, by the file it is written to. */
export function cosafeDashboards(): { file: string; dashboard: dashboard.Dashboard }[] {
  return [
    { file: 'cosafe-site.json', dashboard: siteDashboard().build() },
    { file: 'cosafe-district.json', dashboard: districtDashboard().build() },
    { file: 'cosafe-hub.json', dashboard: hubDashboard().build() },
  ];
}

/** One file of an export, its path relative to the export's directory. */
export interface ExportFile {
  path: string;
  content: string;
}

/** Where the provisioning files go in an export (the dashboards' JSON: DASHBOARDS_DIR, provisioning.ts). */
export const DATASOURCE_FILE = 'provisioning/datasources/cosafe.yaml';
export const PROVIDER_FILE = 'provisioning/dashboards/cosafe.yaml';

/** The committed export (dashboards/grafana/): the defaults, as the README's `docker run` mounts it. */
export const COMMITTED = {
  dir: 'dashboards/grafana',
  target: { influxUrl: 'http://localhost:8086', database: 'cosafe' } satisfies DatasourceTarget,
  dashboardsPath: '/var/lib/grafana/dashboards/cosafe',
};

/**
 * The files of an export: the dashboards' JSON (`dashboards/*.json`) and
 * Grafana's provisioning files (`provisioning/`). `dashboardsPath` is where
 * Grafana's server finds the JSON (the provider's path).
 */
export function exportFiles(o: { target: DatasourceTarget; dashboardsPath: string }): ExportFile[] {
  return [
    ...cosafeDashboards().map((d) => ({ path: `${DASHBOARDS_DIR}/${d.file}`, content: `${JSON.stringify(d.dashboard, null, 2)}\n` })),
    { path: DATASOURCE_FILE, content: datasourceYaml(o.target) },
    { path: PROVIDER_FILE, content: providerYaml(o.dashboardsPath) },
  ];
}
