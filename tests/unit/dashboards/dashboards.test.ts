import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { timeSeries } from '../../../broker/contract/index.js';
import { COMMITTED, exportFiles } from '../../../dashboards/generate.js';
import { datasourceYaml, providerYaml } from '../../../dashboards/provisioning.js';

/** The committed dashboards are what the code generates, and Grafana can load them as they are. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const committedDir = join(root, COMMITTED.dir);
const files = exportFiles({ target: COMMITTED.target, dashboardsPath: COMMITTED.dashboardsPath });

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [relative(committedDir, join(dir, e.name))]));
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; datasource?: { uid: string }; query: string }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; datasource: { uid: string }; query: string }[] };
  annotations?: { list: { name: string; builtIn?: number; datasource: { uid: string }; target?: { datasource: { uid: string }; query: string } }[] };
}
const dashboards = files.filter((f) => f.path.endsWith('.json')).map((f) => ({ path: f.path, d: JSON.parse(f.content) as Dashboard }));
const provisioned = parse(readFileSync(join(committedDir, 'provisioning/datasources/cosafe.yaml'), 'utf8')) as { datasources: { uid: string; type: string }[] };

describe('committed dashboards', () => {
  it('are what dashboards/*.ts generates (run `npm run dashboards` after a change)', () => {
    expect(walk(committedDir).sort()).toEqual(files.map((f) => f.path).sort());
    for (const f of files) expect(readFileSync(join(committedDir, f.path), 'utf8'), f.path).toBe(f.content);
  });

  it('are the site, district and hub operations dashboards, with their template variables', () => {
    expect(dashboards.map((x) => x.d.title)).toEqual(['cosafe / Site', 'cosafe / District', 'cosafe / Hub operations']);
    const vars = (uid: string) => dashboards.find((x) => x.d.uid === uid)!.d.templating.list.map((v) => v.name);
    expect(vars('cosafe-site')).toEqual(['site', 'device', 'metric']);
    expect(vars('cosafe-district')).toEqual(['district']);
    expect(vars('cosafe-hub')).toEqual(['instance']);
    for (const { d } of dashboards) for (const v of d.templating.list) expect(v.query, `${d.uid} $${v.name}`).toMatch(/^SHOW TAG VALUES FROM /);
  });
});

describe('well formed for Grafana', () => {
  it('has unique dashboard uids Grafana accepts (at most 40 characters) and a supported schemaVersion', () => {
    const uids = dashboards.map((x) => x.d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const uid of uids) expect(uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    // Grafana 10.0 (schema 38) to 12.x (42); Grafana migrates older ones, a newer one it may not read.
    for (const { d } of dashboards) expect(d.schemaVersion, d.uid).toBeGreaterThanOrEqual(38), expect(d.schemaVersion, d.uid).toBeLessThanOrEqual(42);
  });

  it('has unique panel ids, rows included, on a 24-column grid without overlap', () => {
    for (const { d } of dashboards) {
      const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
      const ids = panels.map((p) => p.id);
      expect(ids.every((n) => Number.isInteger(n) && n > 0), `${d.uid} ids ${ids.join(',')}`).toBe(true);
      expect(new Set(ids).size, `${d.uid} ids ${ids.join(',')}`).toBe(ids.length);
      for (const p of panels) {
        const g = p.gridPos;
        expect(g.x >= 0 && g.w >= 1 && g.x + g.w <= 24 && g.h >= 1 && g.y >= 0, `${d.uid} "${p.title}" gridPos ${JSON.stringify(g)}`).toBe(true);
      }
      for (const [i, a] of panels.entries())
        for (const b of panels.slice(i + 1)) {
          const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
          expect(overlap, `${d.uid}: "${a.title}" and "${b.title}" overlap`).toBe(false);
        }
    }
  });

  it('names the provisioned data source by its uid everywhere: panels, targets, variables, annotations; no ${DS_...} placeholder', () => {
    expect(provisioned.datasources).toHaveLength(1);
    const { uid, type } = provisioned.datasources[0]!;
    expect(type).toBe('influxdb');
    for (const { path, d } of dashboards) {
      const text = readFileSync(join(committedDir, path), 'utf8');
      expect(text).not.toMatch(/\$\{DS_|__inputs/);
      for (const p of d.panels.filter((x) => x.type !== 'row')) {
        expect(p.datasource?.uid, `${d.uid} "${p.title}"`).toBe(uid);
        expect(p.targets?.length, `${d.uid} "${p.title}" has queries`).toBeGreaterThan(0);
        for (const t of p.targets!) expect(t.datasource?.uid, `${d.uid} "${p.title}" ${t.refId}`).toBe(uid);
      }
      for (const v of d.templating.list) expect(v.datasource.uid, `${d.uid} $${v.name}`).toBe(uid);
      for (const a of (d.annotations?.list ?? []).filter((x) => !x.builtIn)) {
        expect(a.datasource.uid, `${d.uid} annotation ${a.name}`).toBe(uid);
        expect(a.target?.datasource.uid, `${d.uid} annotation ${a.name}`).toBe(uid);
      }
    }
  });

  it('reads only measurements, tags and fields the contract declares (or names its query gives with AS)', () => {
    const measurements = new Set<string>(Object.values(timeSeries).map((m) => m.measurement));
    const names = new Set<string>(Object.values(timeSeries).flatMap((m) => [...m.tags, ...m.fields]));
    const queries = dashboards.flatMap(({ d }) => [
      ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${d.uid} "${p.title}"`, q: t.query }))),
      ...d.templating.list.map((v) => ({ where: `${d.uid} $${v.name}`, q: v.query })),
      ...(d.annotations?.list ?? []).filter((a) => a.target).map((a) => ({ where: `${d.uid} annotation ${a.name}`, q: a.target!.query })),
    ]);
    expect(queries.length).toBeGreaterThan(40);
    for (const { where, q } of queries) {
      const aliases = new Set([...q.matchAll(/ AS "([^"]+)"/g)].map((m) => m[1]!));
      const from = [...q.matchAll(/FROM ((?:"[^"]+"(?:, )?)+)/g)].flatMap((m) => [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!));
      for (const m of from) expect(measurements.has(m), `${where}: measurement "${m}"`).toBe(true);
      for (const [, n] of q.matchAll(/"([^"]+)"/g)) expect(measurements.has(n!) || names.has(n!) || aliases.has(n!), `${where}: "${n}" is not in broker/contract/time-series.ts`).toBe(true);
    }
  });
});

describe('provisioning files', () => {
  it('provide the InfluxDB data source with the fixed uid, and a file provider of the dashboards', () => {
    const ds = parse(datasourceYaml({ influxUrl: 'http://influx.example:8086', database: 'cosafe' })) as { apiVersion: number; datasources: Record<string, unknown>[] };
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources[0]).toMatchObject({ uid: 'cosafe-influxdb', type: 'influxdb', access: 'proxy', url: 'http://influx.example:8086', jsonData: { dbName: 'cosafe', timeInterval: '10s' } });
    const provider = parse(providerYaml('/var/lib/grafana/dashboards/cosafe')) as { providers: Record<string, unknown>[] };
    expect(provider.providers[0]).toMatchObject({ type: 'file', allowUiUpdates: false, options: { path: '/var/lib/grafana/dashboards/cosafe' } });
  });

  it('never hold a secret: Grafana takes the password or token from its environment; a literal $ is escaped', () => {
    const basic = parse(datasourceYaml({ influxUrl: 'http://x:8086', database: 'ops$db', auth: { type: 'basic', user: 'grafana' } })) as { datasources: Record<string, any>[] };
    expect(basic.datasources[0]).toMatchObject({ basicAuth: true, basicAuthUser: 'grafana', secureJsonData: { basicAuthPassword: '$COSAFE_INFLUX_PASSWORD' }, jsonData: { dbName: 'ops$$db' } });
    const token = parse(datasourceYaml({ influxUrl: 'http://x:8086', database: 'cosafe', auth: { type: 'token' } })) as { datasources: Record<string, any>[] };
    expect(token.datasources[0]).toMatchObject({ jsonData: { httpHeaderName1: 'Authorization' }, secureJsonData: { httpHeaderValue1: 'Token $COSAFE_INFLUX_TOKEN' } });
  });
});
