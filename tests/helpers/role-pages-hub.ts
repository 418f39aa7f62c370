import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { pino } from 'pino';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';
import type { Identity } from '../../broker/auth/identity.js';
import { topics } from '../../broker/contract/index.js';
import { loadProfiles, startStack, type Stack } from '../../cli/compose.js';
import { SiteStore, siteStorePath } from '../../cloud-sync/registry/site-store.js';
import type { SiteInput } from '../../cloud-sync/registry/site.js';
import { systemClock } from '../../core/clock.js';
import { buildConfig, type ConfigInput } from '../../core/config.js';
import { Gateway } from '../../edge/gateway.js';
import { FirePanelSimulator } from '../simulators/fire-panel.js';
import { SensorSimulator } from '../simulators/mqtt-sensors.js';
import { PtyPair } from '../simulators/pty-pair.js';
import { requireBinary } from './processes.js';

/**
 * The hub (broker, cloud-sync) with real gateways for the pages' tests and
 * screenshots: a bakery whose gateway reads a fire panel's printer port over a
 * socat pseudo-terminal and two MQTT sensors, and a depot of another owner
 * with a sensor of its own, so an owner's page can be seen not to show it.
 * People's credentials: the bakery's owner, the depot's owner, the fire
 * department of district north (the bakery's).
 */
export interface RolePagesHub {
  stack: Stack;
  api: string;
  panel: FirePanelSimulator;
  logins: Record<'owner' | 'otherOwner' | 'dispatcher', { username: string; password: string }>;
  credentials: CredentialStore;
  close(): Promise<void>;
}

export const BAKERY: SiteInput = {
  id: 'bakery-12',
  name: 'Bakery Müller',
  address: 'Hauptstraße 12, 10115 Berlin',
  location: { lat: 52.5301, lon: 13.3849 },
  district: 'north',
  occupancy: 'bakery on the ground floor, flats above',
  hazards: ['LPG tank in the yard', 'flour dust in the mill room'],
  contacts: [{ name: 'Anna Müller', role: 'owner', phone: '+49 30 1234567' }],
};
export const DEPOT: SiteInput = { id: 'depot-3', name: 'Depot 3', address: 'Südring 3, 12345 Berlin', location: { lat: 52.41, lon: 13.4 }, district: 'south' };

export async function startRolePagesHub(o: { panelLocation?: string; http?: NonNullable<ConfigInput['http']> } = {}): Promise<RolePagesHub> {
  requireBinary('socat', 'socat');
  const dataDir = mkdtempSync(join(tmpdir(), 'cosafe-pages-'));
  const sites = SiteStore.open(siteStorePath(dataDir));
  for (const s of [BAKERY, DEPOT]) sites.put(s);
  sites.close();
  const credentials = CredentialStore.open(credentialStorePath(dataDir));
  const issue = async (i: Identity) => ({ username: i.id, password: (await credentials.add(i)).secret });
  const logins = {
    owner: await issue({ role: 'owner', id: 'anna', sites: ['bakery-12'] }),
    otherOwner: await issue({ role: 'owner', id: 'depot-owner', sites: ['depot-3'] }),
    dispatcher: await issue({ role: 'fire-department', id: 'fd-north-1', district: 'north' }),
  };
  const line = await new PtyPair('pages-panel').plug();
  const logger = pino({ level: 'silent' });
  const config = buildConfig({
    dataDir,
    log: { level: 'silent' },
    broker: { host: '127.0.0.1', port: 0 },
    http: { ...o.http, port: 0 },
    gateway: {
      id: 'gw-1',
      site: 'bakery-12',
      devices: [
        { id: 'fire-panel', profile: 'serial-conventional-panel-printer', port: line.devicePath, location: o.panelLocation ?? 'ground floor, fire control room' },
        { id: 'smoke-kitchen', profile: 'mqtt-smoke-detector', location: '1F kitchen' },
        { id: 'temp-storage', profile: 'mqtt-temperature-humidity', location: 'basement storage' },
      ],
    },
    cloudSync: { fireDepartments: [{ id: 'fd-north', district: 'north', channels: [{ type: 'mqtt' }] }], alarms: { ackTimeoutSeconds: 600 } },
  });
  const stack = await startStack(config, ['broker', 'cloud-sync', 'gateway'], logger);
  const brokerUrl = stack.broker!.url;
  // The depot's own gateway, in this process with a state directory of its own.
  const depotDir = join(dataDir, 'depot');
  mkdirSync(depotDir, { mode: 0o700 });
  const depotConfig = buildConfig({ dataDir: depotDir, gateway: { id: 'gw-depot', site: 'depot-3', devices: [{ id: 'depot-sensor', profile: 'mqtt-temperature-humidity', location: 'loading bay' }] } });
  const depot = new Gateway({
    config: depotConfig.gateway,
    brokerUrl,
    brokerAuth: stack.issueInternal!({ role: 'gateway', id: '@gateway:depot-3:gw-depot', site: 'depot-3', gateway: 'gw-depot' }),
    profiles: loadProfiles(depotConfig),
    stateDir: depotDir,
    logger,
    clock: systemClock,
    metrics: stack.metrics,
  });
  await depot.start();
  const device = (site: string, id: string) => ({ topic: topics.deviceUplink(site, id), credentials: stack.issueInternal!({ role: 'device', id: `@device:${site}:${id}`, site, device: id }) });
  const sensors = new SensorSimulator({
    brokerUrl,
    intervalMs: 1000,
    devices: [
      { ...device('bakery-12', 'smoke-kitchen'), kind: 'smoke-detector' },
      { ...device('bakery-12', 'temp-storage'), kind: 'temperature-humidity' },
      { ...device('depot-3', 'depot-sensor'), kind: 'temperature-humidity' },
    ],
  });
  await sensors.start();
  const panel = await new FirePanelSimulator(line.simPath).open();
  return {
    stack,
    api: stack.cloudSync!.httpUrl,
    panel,
    logins,
    credentials,
    async close() {
      await panel.close();
      await sensors.stop();
      await depot.stop();
      await stack.stop();
      await line.unplug();
      credentials.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Signs a browser in as a person would: opens `path`, is sent to the sign-in
 * page (not signed in yet), fills it in, and is brought back to `path`.
 */
export async function signIn(page: Page, base: string, login: { username: string; password: string }, path: string): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.waitForURL(/\/web\/login\//);
  await page.getByLabel('Username').fill(login.username);
  await page.getByLabel('Password').fill(login.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(new RegExp(path.replace(/\//g, '\\/')));
}
