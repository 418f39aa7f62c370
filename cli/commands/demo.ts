import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { buildConfig, readConfigFile, type ConfigInput } from '../../core/config.js';
import { expandDevices } from '../../core/device-ranges.js';
import { CosafeError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { SiteStore, siteStorePath } from '../../cloud-sync/registry/site-store.js';
import type { SiteInput } from '../../cloud-sync/registry/site.js';
import type { AlarmingGateway, DispatchCentre } from '../../tests/simulators/dispatch-centre.js';
import type { FireDepartmentReceiver, ReceivedAlarm } from '../../tests/simulators/fire-department.js';
import { untilStopSignal } from '../signals.js';
import { intOption, logOptions } from './options.js';

interface DemoOptions {
  config?: string;
  port: number;
  httpPort: number;
  influxUrl?: string;
  influxDb?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  dataDir?: string;
  interval: number;
  alarmEvery: number;
  duration?: number;
  logLevel?: string;
  logFormat?: 'pretty' | 'json';
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the whole flow in one process: broker, a gateway with simulated sensors, cloud-sync, and a simulated fire department')
    .option('-c, --config <file>', 'start from this config file (flags below override it)')
    .option('-p, --port <port>', 'MQTT broker port', intOption('--port', 0, 65535), 1883)
    .option('--http-port <port>', 'hub HTTP API port (health, readings, metrics)', intOption('--http-port', 0, 65535), 8080)
    .option('--influx-url <url>', 'write readings to this InfluxDB (e.g. http://127.0.0.1:8086); default: local SQLite store')
    .option('--influx-db <name>', 'InfluxDB database', undefined)
    .option('--webhook-url <url>', "send alarms to this fire-department webhook instead of the demo's own receiver")
    .option('--webhook-secret <secret>', 'Standard Webhooks secret (whsec_...) for --webhook-url')
    .option('--data-dir <dir>', 'where state is kept (default .cosafe)')
    .option('--interval <ms>', 'how often each simulated sensor reports', intOption('--interval', 10, 3_600_000), 1000)
    .option('--alarm-every <s>', 'the simulated smoke detector goes into alarm for 8 s every this many seconds (0: never)', intOption('--alarm-every', 0, 86_400), 30)
    .option('--duration <s>', 'stop by itself after this many seconds', intOption('--duration', 1, 31_536_000))
    .addHelpText(
      'after',
      `
Simulated devices speak their real protocols: MQTT sensors publish their own JSON, a fire alarm
panel prints events on a serial line, three Modbus RTU units share an RS-485 bus (both over socat
pseudo-terminals, if socat is installed). The gateway decodes them
with their profiles, raises alarms at the edge, and sends batches to the broker; cloud-sync stores the
readings and sends fire alarms as signed webhooks. Press Ctrl-C to stop.

The broker admits only clients it knows (each simulated sensor logs in as its own device).
To watch it while the demo runs, issue yourself an admin credential in the same data directory:
  cosafe credentials add --role admin --id me            (prints the secret once)
  mosquitto_sub -u me -P <secret> -t 'cosafe/#' -v

Examples:
  cosafe demo
  cosafe demo --port 1884 --influx-url http://127.0.0.1:8086
  cosafe demo --webhook-url https://dispatch.example/alarms --webhook-secret whsec_...`,
    );
  logOptions(program.commands.at(-1)!);
  program.commands.at(-1)!.action(async (o: DemoOptions) => runDemo(o));
}

async function runDemo(o: DemoOptions): Promise<void> {
  // The simulators and the stack are loaded only when the demo runs, so that other commands start quickly.
  const [{ FireDepartmentReceiver }, { createDemoSite }, { AlarmingGateway, DispatchCentre }, { startStack }] = await Promise.all([
    import('../../tests/simulators/fire-department.js'),
    import('../../tests/simulators/demo-site.js'),
    import('../../tests/simulators/dispatch-centre.js'),
    import('../compose.js'),
  ]);
  const base: ConfigInput = o.config ? structuredClone(readConfigFile(o.config)) : {};
  const baseDir = o.config ? dirname(resolve(o.config)) : process.cwd();
  if ((o.webhookUrl === undefined) !== (o.webhookSecret === undefined)) {
    throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--webhook-url and --webhook-secret go together');
  }

  // Without a real fire department, the demo runs simulated receiving centres that check every
  // signature: district central's dispatcher acknowledges after a few seconds; district east's
  // is unattended, so its alarms escalate to a duty officer.
  const receivers: FireDepartmentReceiver[] = [];
  const logger = createLogger({ level: (o.logLevel ?? base.log?.level ?? 'info') as 'info', format: o.logFormat ?? base.log?.format });
  const simulated = !o.webhookUrl && !(base.cloudSync?.fireDepartments?.length);
  let centre: DispatchCentre | undefined;
  const departments: NonNullable<ConfigInput['cloudSync']>['fireDepartments'] = [];
  if (simulated) {
    const said = (who: string) => (a: ReceivedAlarm) => {
      const d = a.body.data as ReceivedAlarm['body']['data'] & { msgType?: string; escalation?: number; alarmId?: string; class?: string };
      logger.warn({ eventId: d.eventId, device: d.device, msgType: d.msgType, escalation: d.escalation, signature: 'verified' }, `${who} received ${d.msgType ?? a.body.type}${d.escalation ? ` (escalation ${d.escalation})` : ''}`);
      if (who === 'FIRE DEPARTMENT central' && d.msgType !== 'Cancel') {
        // The dispatcher confirms a fire and asks to warn the public; the all-clear follows when the detector clears.
        const warnPublic = d.class === 'fire';
        centre?.acknowledgeLater(
          d.eventId,
          () => logger.warn({ eventId: d.eventId, alarmId: d.alarmId, warnPublic }, `FIRE DEPARTMENT central acknowledged over MQTT${warnPublic ? ' and warns the public' : ''}`),
          { warnPublic },
        );
      }
    };
    const demoDepartments: [string, string, { district?: string; primary?: boolean; channels?: { type: 'mqtt' }[] }][] = [
      ['fd-central', 'FIRE DEPARTMENT central', { district: 'central', channels: [{ type: 'mqtt' }] }],
      ['fd-east', 'FIRE DEPARTMENT east (unattended)', { district: 'east' }],
      ['duty-officer', 'DUTY OFFICER', { primary: false }],
    ];
    for (const [id, who, extra] of demoDepartments) {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      const r = await new FireDepartmentReceiver({ secret, onAlarm: said(who) }).start();
      receivers.push(r);
      departments.push({ id, url: r.url, secret, ...extra });
    }
  } else if (o.webhookUrl) {
    departments.push({ id: 'fire-department', url: o.webhookUrl, secret: o.webhookSecret! });
  }

  const site = base.gateway?.site ?? 'demo-site';
  const demoSite = await createDemoSite({ site, intervalMs: o.interval, alarmEveryMs: o.alarmEvery * 1000, logger });
  const input: ConfigInput = {
    ...base,
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    // --port is the MQTT TCP port, whatever the config file says.
    broker: { ...base.broker, port: o.port, listeners: { ...base.broker?.listeners, tcp: { ...base.broker?.listeners?.tcp, port: o.port } } },
    http: { ...base.http, port: o.httpPort },
    gateway: { ...base.gateway, site, devices: base.gateway?.devices?.length ? base.gateway.devices : demoSite.devices },
    cloudSync: {
      ...base.cloudSync,
      ...(o.influxUrl ? { influx: { ...base.cloudSync?.influx, url: o.influxUrl, ...(o.influxDb ? { database: o.influxDb } : {}) } } : {}),
      ...(departments.length ? { fireDepartments: departments } : {}),
      alarms: {
        ...base.cloudSync?.alarms,
        // The demo's alarms are simulated: CAP status Exercise.
        cap: { ...base.cloudSync?.alarms?.cap, status: 'Exercise' },
        ...(simulated ? { districts: { central: { ackTimeoutSeconds: 30 }, east: { ackTimeoutSeconds: 15, escalation: [{ notify: ['duty-officer'] }] } } } : {}),
      },
    },
  };
  let stack;
  let warehouse: AlarmingGateway | undefined;
  try {
    const config = buildConfig(input, baseDir, o.config ?? 'command line');
    registerDemoSites(config.dataDir, site, simulated);
    stack = await startStack(config, ['broker', 'cloud-sync', 'gateway'], logger, undefined, { mqtt: '--port', http: '--http-port' });
    // Each simulated sensor logs in as its own device with an internal identity of this process: it may
    // publish on its own uplink topic and nowhere else, as a real device with its credential would.
    const { site: siteId } = config.gateway;
    const issue = stack.issueInternal!;
    await demoSite.start(stack.broker!.url, (device) => issue({ role: 'device', id: `@device:${siteId}:${device}`, site: siteId, device }));
    if (simulated) {
      centre = await new DispatchCentre({ brokerUrl: stack.broker!.url, district: 'central', login: issue({ role: 'fire-department', id: '@fire-department:central', district: 'central' }), operator: 'demo dispatcher', delayMs: Math.min(3000, Math.max(200, o.alarmEvery * 250)) }).start();
      // A warehouse in district east, whose fire department never answers: its alarms escalate.
      warehouse = await new AlarmingGateway({
        brokerUrl: stack.broker!.url,
        site: 'demo-warehouse',
        gateway: 'gw-warehouse',
        login: issue({ role: 'gateway', id: '@gateway:demo-warehouse:gw-warehouse', site: 'demo-warehouse', gateway: 'gw-warehouse' }),
        everyMs: Math.max(o.alarmEvery, 20) * 2000,
        forMs: 40_000,
      }).start();
    }
    // The CLI finds the hub's operator token in the data directory; the default one needs no flag.
    const dataDirFlag = resolve(config.dataDir) === resolve('.cosafe') ? '' : ` --data-dir ${config.dataDir}`;
    logger.info(
      { devices: expandDevices(config.gateway.devices).length, broker: stack.broker!.url, api: stack.cloudSync!.httpUrl, store: config.cloudSync.influx ? config.cloudSync.influx.url : 'sqlite' },
      `demo running: try "cosafe readings --api ${stack.cloudSync!.httpUrl}${dataDirFlag}" and "cosafe status --api ${stack.cloudSync!.httpUrl}${dataDirFlag}" (Ctrl-C to stop)`,
    );
    const residents = `${stack.cloudSync!.httpUrl.replace('://127.0.0.1', '://localhost')}/web/residents/`;
    logger.info({ residents, feed: `${stack.cloudSync!.httpUrl}/public/v1/feeds/cap.atom` }, `residents' page: open ${residents} and enter 52.5301, 13.3849 (the bakery's neighbourhood)`);
  } catch (err) {
    await warehouse?.stop();
    await centre?.stop();
    await demoSite.stop();
    await stack?.stop();
    await demoSite.close();
    for (const r of receivers) await r.stop();
    throw err;
  }

  const { metrics } = stack;
  let last = { edge: 0, stored: 0, t: Date.now() };
  const report = setInterval(() => {
    const now = Date.now();
    const edge = metrics.total('cosafe_edge_readings_total');
    const stored = metrics.total('cosafe_influx_points_written_total') + metrics.total('cosafe_store_points_written_total');
    const secs = (now - last.t) / 1000;
    logger.info(
      {
        readingsPerSec: Math.round((edge - last.edge) / secs),
        storedPerSec: Math.round((stored - last.stored) / secs),
        alarms: metrics.total('cosafe_edge_events_total'),
        delivered: metrics.total('cosafe_dispatch_delivered_total'),
        acknowledged: metrics.total('cosafe_alarm_acks_total'),
        escalations: metrics.total('cosafe_alarm_escalations_total'),
      },
      'flow',
    );
    last = { edge, stored, t: now };
  }, 5000);

  const stopAfter = o.duration ? new Promise<string>((r) => setTimeout(() => r('duration'), o.duration! * 1000).unref()) : new Promise<string>(() => {});
  await Promise.race([untilStopSignal(logger), stopAfter]);
  clearInterval(report);
  await warehouse?.stop();
  await centre?.stop();
  await demoSite.stop();
  await stack.stop();
  await demoSite.close();
  for (const r of receivers) await r.stop();
  logger.info({ readings: metrics.total('cosafe_edge_readings_total'), alarmsDelivered: metrics.total('cosafe_dispatch_delivered_total') }, 'demo stopped');
}

/** The demo's buildings, registered as an operator would (`cosafe sites add`): the district decides who gets their alarms. */
function registerDemoSites(dataDir: string, site: string, withWarehouse: boolean): void {
  const sites: SiteInput[] = [
    {
      id: site,
      name: 'Demo Bakery',
      address: 'Hauptstraße 12, 10115 Berlin',
      location: { lat: 52.5301, lon: 13.3849 },
      district: 'central',
      occupancy: 'bakery on the ground floor, flats above',
      hazards: ['LPG tank in the yard', 'flour dust in the mill room'],
      contacts: [{ name: 'Anna Müller', role: 'owner', phone: '+49 30 1234567' }],
    },
  ];
  // Neighbours of the bakery, registered without gateways: with them, the bakery's neighbourhood cell holds
  // three sites, so its public alerts can stay at resolution 8 (k = 3) without pointing at the bakery.
  sites.push(
    { id: 'demo-cafe', name: 'Demo Café', address: 'Hauptstraße 14, 10115 Berlin', location: { lat: 52.5305, lon: 13.3858 }, district: 'central' },
    { id: 'demo-print-shop', name: 'Demo Print Shop', address: 'Hauptstraße 9, 10115 Berlin', location: { lat: 52.5296, lon: 13.3841 }, district: 'central' },
  );
  if (withWarehouse) {
    sites.push({
      id: 'demo-warehouse',
      name: 'Demo Logistics Warehouse',
      address: 'Am Güterbahnhof 3, 10245 Berlin',
      location: { lat: 52.5012, lon: 13.4498 },
      district: 'east',
      occupancy: 'high-bay storage',
      hazards: ['lithium batteries in aisle 7'],
      contacts: [{ name: 'Site security', phone: '+49 30 7654321' }],
    });
  }
  const store = SiteStore.open(siteStorePath(dataDir));
  try {
    for (const s of sites) if (!store.get(s.id)) store.put(s);
  } finally {
    store.close();
  }
}
