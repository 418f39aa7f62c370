import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import mqtt from 'mqtt';
import { timeSeries, topics } from '../../broker/contract/index.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { addCredential, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { applyMacros, grafanaInterval, interpolateVariables, type DashboardVariable, type Selection } from '../helpers/grafana-influxql.js';
import { startInfluxDB, type InfluxSeries, type InfluxServer } from '../helpers/influxdb.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';

/**
 * Every query of every dashboard `cosafe dashboards export` writes, with
 * Grafana's interpolation, against a real InfluxDB 1.x the running demo fills
 * (a site with simulated devices, a warehouse whose fire department never
 * answers, a dispatcher who acknowledges and warns the public).
 */

interface Target {
  refId: string;
  query: string;
}
interface Panel {
  type: string;
  title: string;
  interval?: string;
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: DashboardVariable[] };
  annotations?: { list: { name: string; target?: Target }[] };
}

/**
 * Panels the demo leaves empty, and why: each of them is asserted empty, so
 * this list stays true (a panel that gets data moves out of it). None: the demo
 * raises no trouble by itself, so the test's own gateway reports one below.
 */
const EXPECTED_EMPTY: Record<string, string> = {};

let influx: InfluxServer;
let demo: Spawned | undefined;
let dir: string;
let dashboards: Dashboard[];
let datasource: { uid: string; url: string; jsonData: { dbName: string; timeInterval: string } };
let started: number;

const q = (text: string) => influx.query(text, datasource.jsonData.dbName);
const has = async (text: string) => (await q(text)).some((s) => s.values.length > 0);

beforeAll(async () => {
  influx = await startInfluxDB();
  dir = mkdtempSync(join(tmpdir(), 'cosafe-dashboards-'));
  const exported = await runCosafe(['dashboards', 'export', join(dir, 'grafana'), '--influx-url', influx.url, '--database', 'cosafe']);
  expect(exported.code, exported.stderr).toBe(0);
  const provisioning = parse(readFileSync(join(dir, 'grafana/provisioning/datasources/cosafe.yaml'), 'utf8')) as { datasources: (typeof datasource)[] };
  datasource = provisioning.datasources[0]!;
  const provider = parse(readFileSync(join(dir, 'grafana/provisioning/dashboards/cosafe.yaml'), 'utf8')) as { providers: { options: { path: string } }[] };
  const path = provider.providers[0]!.options.path;
  dashboards = readdirSync(path)
    .sort()
    .map((f) => JSON.parse(readFileSync(join(path, f), 'utf8')) as Dashboard);

  // The hub records its own operations every second and the agencies' summaries every 5 s, so the demo fills every measurement soon.
  const config = join(dir, 'cosafe.yaml');
  writeFileSync(
    config,
    stringify({
      dataDir: join(dir, 'data'),
      cloudSync: { influx: { url: influx.url, database: datasource.jsonData.dbName, flushIntervalMs: 50 }, agency: { intervalSeconds: 5 }, timeSeries: { intervalSeconds: 1 } },
    }),
  );
  started = Date.now();
  const port = await freePort();
  demo = startCosafe(['demo', '--config', config, '--port', String(port), '--http-port', String(await freePort()), '--interval', '200', '--alarm-every', '5']);
  const { reading, event, alarm, publicAlert, agencySummary, agencyAlarmsDaily, hub, hubGateway } = timeSeries;
  // Wait for what the demo makes, in the order it makes it; a failure names what did not come.
  const waits: [string, string][] = [
    ['readings', `SELECT count("value") FROM "${reading.measurement}"`],
    ['a fire alarm acknowledged by the dispatcher', `SELECT "ack_seconds" FROM "${alarm.measurement}" WHERE "record" = 'transition' AND "change" = 'acknowledge'`],
    ['a public alert', `SELECT "alert_id" FROM "${publicAlert.measurement}"`],
    ['a cleared event', `SELECT "event_id" FROM "${event.measurement}" WHERE "state" = 'cleared'`],
    ["the warehouse's alarm, open", `SELECT "open" FROM "${alarm.measurement}" WHERE "record" = 'open' AND "district" = 'east'`],
    ['agency summaries of both districts', `SELECT last("sites_registered") FROM "${agencySummary.measurement}" WHERE "district" = 'east'`],
    ['alarms per day', `SELECT "count" FROM "${agencyAlarmsDaily.measurement}"`],
    ['a delivery latency of the hub', `SELECT "delivery_latency_p50_seconds" FROM "${hub.measurement}"`],
    ['gateways of the hub', `SELECT count("online") FROM "${hubGateway.measurement}" WHERE "gateway" = 'gw-1'`],
  ];
  for (const [what, query] of waits) {
    await waitUntil(`${what} in InfluxDB (demo output: ${demo.output().slice(-1500)})`, () => has(query).catch(() => false), 120_000, 250);
  }
  // A second gateway at the bakery, whose detector in the cellar has gone silent: trouble (comm-lost), so the
  // "silent or in trouble" panels have something to show. Its login is issued as the operator would.
  const login = await addCredential(config, '--role', 'gateway', '--site', 'demo-site', '--gateway', 'gw-cellar');
  const gw = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { ...login, reconnectPeriod: 0 });
  const trouble = alarmEvent({ site: 'demo-site', gateway: 'gw-cellar', device: 'smoke-cellar', condition: 'comm-lost', class: 'trouble', metric: 'smoke', value: 0, location: 'cellar' });
  await gw.publishAsync(topics.events('demo-site', 'gw-cellar'), JSON.stringify(trouble), { qos: 1 });
  await gw.endAsync();
  await waitUntil('the trouble, open', () => has(`SELECT "open" FROM "${alarm.measurement}" WHERE "record" = 'open' AND "class" = 'trouble'`).catch(() => false), 60_000, 250);
}, 240_000);

afterAll(async () => {
  if (demo) expect(await demo.stop('SIGINT'), demo.output().slice(-3000)).toBe(0);
  await influx?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** The values of each variable, as Grafana lists them: its query with the variables before it at "All". */
async function variableValues(d: Dashboard): Promise<Record<string, string[]>> {
  const values: Record<string, string[]> = {};
  const all: Record<string, Selection> = {};
  for (const v of d.templating.list) {
    const series = await q(interpolateVariables(v.query, d.templating.list, all));
    values[v.name] = [...new Set(series.flatMap((s) => s.values.map((row) => String(row[1]))))].sort();
    all[v.name] = { all: true, values: values[v.name]! };
  }
  return values;
}

/** Every query of a dashboard with its panel's minimum interval. */
function queriesOf(d: Dashboard): { name: string; query: string; minInterval: string }[] {
  return [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ name: `${d.uid} "${p.title}"${p.targets!.length > 1 ? ` ${t.refId}` : ''}`, query: t.query, minInterval: p.interval ?? datasource.jsonData.timeInterval }))),
    ...(d.annotations?.list ?? []).filter((a) => a.target).map((a) => ({ name: `${d.uid} annotation "${a.name}"`, query: a.target!.query, minInterval: datasource.jsonData.timeInterval })),
  ];
}

async function run(query: string, variables: DashboardVariable[], selected: Record<string, Selection>, minInterval: string): Promise<{ text: string; series: InfluxSeries[] }> {
  const range = { from: started - 60_000, to: Date.now() + 5_000 };
  const text = applyMacros(interpolateVariables(query, variables, selected), range, grafanaInterval(range, minInterval));
  // Nothing of Grafana's is left for InfluxDB to choke on: a `$` is only a regex's end.
  expect(text, text).not.toMatch(/\$(?![/)])/);
  return { text, series: await q(text) };
}

describe('dashboards against the demo in InfluxDB', () => {
  it('exports provisioning for the InfluxDB given, with the uid every dashboard names', () => {
    expect(datasource.url).toBe(influx.url);
    expect(datasource.uid).toBe('cosafe-influxdb');
    expect(dashboards.map((d) => d.uid).sort()).toEqual(['cosafe-district', 'cosafe-hub', 'cosafe-site']);
  });

  it('every variable lists values from SHOW TAG VALUES', async () => {
    for (const d of dashboards) {
      const values = await variableValues(d);
      for (const v of d.templating.list) expect(values[v.name]!.length, `${d.uid} $${v.name}`).toBeGreaterThan(0);
    }
    const site = await variableValues(dashboards.find((d) => d.uid === 'cosafe-site')!);
    expect(site.site).toEqual(expect.arrayContaining(['demo-site', 'demo-warehouse']));
    const district = await variableValues(dashboards.find((d) => d.uid === 'cosafe-district')!);
    expect(district.district).toEqual(['central', 'east']);
  });

  it('every panel and annotation query runs with every variable at "All", and returns data but for the panels listed as empty', async () => {
    const empty: string[] = [];
    let count = 0;
    for (const d of dashboards) {
      const values = await variableValues(d);
      const all = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { all: true, values: v } satisfies Selection]));
      for (const { name, query, minInterval } of queriesOf(d)) {
        count++;
        const { text, series } = await run(query, d.templating.list, all, minInterval).catch((err: Error) => {
          throw new Error(`${name}: ${err.message}`);
        });
        const rows = series.reduce((n, s) => n + s.values.length, 0);
        if (rows === 0) empty.push(name);
        if (name in EXPECTED_EMPTY) expect(rows, `${name} was expected empty (${EXPECTED_EMPTY[name]}): ${text}`).toBe(0);
      }
    }
    expect(count).toBeGreaterThan(40);
    expect(empty.sort()).toEqual(Object.keys(EXPECTED_EMPTY).sort());
  });

  it('every query runs with one value and with several values of each variable (regex forms)', async () => {
    for (const d of dashboards) {
      const values = await variableValues(d);
      const forms: Record<string, Selection>[] = [
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { all: false, values: v.slice(0, 1) } satisfies Selection])),
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { all: false, values: v.slice(0, 2) } satisfies Selection])),
      ];
      for (const selected of forms)
        for (const { name, query, minInterval } of queriesOf(d))
          await run(query, d.templating.list, selected, minInterval).catch((err: Error) => {
            throw new Error(`${name} with ${JSON.stringify(selected)}: ${err.message}`);
          });
    }
    // The site dashboard of the bakery alone: its readings, not the warehouse's.
    const site = dashboards.find((d) => d.uid === 'cosafe-site')!;
    const values = await variableValues(site);
    const bakery: Record<string, Selection> = { site: { all: false, values: ['demo-site'] }, device: { all: true, values: values.device! }, metric: { all: true, values: values.metric! } };
    const latest = site.panels.find((p) => p.title === 'Latest value of every device')!;
    const { series } = await run(latest.targets![0]!.query, site.templating.list, bakery, datasource.jsonData.timeInterval);
    expect(series.length).toBeGreaterThan(0);
    expect(new Set(series.map((s) => s.tags?.site))).toEqual(new Set(['demo-site']));
  });
});
