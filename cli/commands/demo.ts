import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { buildConfig, readConfigFile, type ConfigInput } from '../../core/config.js';
import { CosafeError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { FireDepartmentReceiver } from '../../tests/simulators/fire-department.js';
import { createDemoSite } from '../../tests/simulators/demo-site.js';
import { startStack } from '../compose.js';
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
  const base: ConfigInput = o.config ? structuredClone(readConfigFile(o.config)) : {};
  const baseDir = o.config ? dirname(resolve(o.config)) : process.cwd();
  if ((o.webhookUrl === undefined) !== (o.webhookSecret === undefined)) {
    throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--webhook-url and --webhook-secret go together');
  }

  // Without a real fire department, the demo runs a simulated receiving centre
  // that checks every signature, so the whole path is visible.
  let receiver: FireDepartmentReceiver | undefined;
  const logger = createLogger({ level: (o.logLevel ?? base.log?.level ?? 'info') as 'info', format: o.logFormat ?? base.log?.format });
  if (!o.webhookUrl && !(base.cloudSync?.fireDepartments?.length)) {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    receiver = await new FireDepartmentReceiver({
      secret,
      onAlarm: (a) =>
        logger.warn(
          { eventId: a.body.data.eventId, device: a.body.data.device, state: a.body.data.state, signature: 'verified' },
          `FIRE DEPARTMENT received ${a.body.type}`,
        ),
    }).start();
    o.webhookUrl = receiver.url;
    o.webhookSecret = secret;
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
      ...(o.webhookUrl ? { fireDepartments: [{ id: 'fire-department', url: o.webhookUrl, secret: o.webhookSecret! }] } : {}),
    },
  };
  let stack;
  try {
    const config = buildConfig(input, baseDir, o.config ?? 'command line');
    stack = await startStack(config, ['broker', 'cloud-sync', 'gateway'], logger, undefined, { mqtt: '--port', http: '--http-port' });
    // Each simulated sensor logs in as its own device with an internal identity of this process: it may
    // publish on its own uplink topic and nowhere else, as a real device with its credential would.
    const { site: siteId } = config.gateway;
    const issue = stack.issueInternal!;
    await demoSite.start(stack.broker!.url, (device) => issue({ role: 'device', id: `@device:${siteId}:${device}`, site: siteId, device }));
    logger.info(
      { devices: config.gateway.devices.length, broker: stack.broker!.url, api: stack.cloudSync!.httpUrl, store: config.cloudSync.influx ? config.cloudSync.influx.url : 'sqlite' },
      `demo running: try "cosafe readings --api ${stack.cloudSync!.httpUrl}" and "cosafe status --api ${stack.cloudSync!.httpUrl}" (Ctrl-C to stop)`,
    );
  } catch (err) {
    await demoSite.stop();
    await stack?.stop();
    await demoSite.close();
    await receiver?.stop();
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
      },
      'flow',
    );
    last = { edge, stored, t: now };
  }, 5000);

  const stopAfter = o.duration ? new Promise<string>((r) => setTimeout(() => r('duration'), o.duration! * 1000).unref()) : new Promise<string>(() => {});
  await Promise.race([untilStopSignal(logger), stopAfter]);
  clearInterval(report);
  await demoSite.stop();
  await stack.stop();
  await demoSite.close();
  await receiver?.stop();
  logger.info({ readings: metrics.total('cosafe_edge_readings_total'), alarmsDelivered: metrics.total('cosafe_dispatch_delivered_total') }, 'demo stopped');
}
