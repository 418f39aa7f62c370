import type { Command } from 'commander';
import { loadConfigFile } from '../../core/config.js';
import { createLogger, type LogLevel } from '../../core/logger.js';
import type { Role } from '../compose.js';
import { untilStopSignal } from '../signals.js';
import { logOptions } from './options.js';

const ROLES: { name: string; roles: Role[]; description: string }[] = [
  { name: 'run', roles: ['broker', 'cloud-sync', 'gateway'], description: 'run broker, cloud-sync and gateway from a config file, in one process' },
  { name: 'hub', roles: ['broker', 'cloud-sync'], description: 'run the hub: broker and cloud-sync, in one process (gateways run elsewhere)' },
  { name: 'broker', roles: ['broker'], description: 'run only the hub broker' },
  { name: 'gateway', roles: ['gateway'], description: 'run only the edge gateway (gateway.brokerUrl names the hub; /health and /metrics on http)' },
  { name: 'cloud-sync', roles: ['cloud-sync'], description: 'run only cloud-sync (cloudSync.brokerUrl names the hub)' },
];

/** Each process role can run alone, or all together. */
export function registerRoles(program: Command): void {
  for (const r of ROLES) {
    const cmd = program
      .command(r.name)
      .description(r.description)
      .requiredOption('-c, --config <file>', 'config file (YAML)');
    logOptions(cmd).action(async (o: { config: string; logLevel?: LogLevel; logFormat?: 'pretty' | 'json' }) => {
      // Loaded here, not at the top: every other cosafe command (credentials, sites, ...) then starts in a fraction of the time.
      const [{ startStack }, { reloadOnChange }, { loadSite }] = await Promise.all([import('../compose.js'), import('../config-reload.js'), import('../site-config.js')]);
      // A gateway's devices and profiles are checked with the file's lines before anything starts.
      const config = r.roles.includes('gateway') ? loadSite(o.config).config : loadConfigFile(o.config);
      const logger = createLogger({ level: o.logLevel ?? config.log.level, format: o.logFormat ?? config.log.format });
      const stack = await startStack(config, r.roles, logger);
      const stopReloading = stack.gateway ? reloadOnChange({ configFile: o.config, running: config, gateway: stack.gateway, logger }) : () => {};
      await untilStopSignal(logger);
      stopReloading();
      await stack.stop();
    });
  }
}

export function registerConfigCheck(program: Command): void {
  program
    .command('check-config')
    .description('validate a config file and print every error with its line')
    .argument('<file>', 'config file (YAML)')
    .action(async (file: string) => {
      const { loadSite } = await import('../site-config.js');
      // Devices must name profiles that exist, with the addresses their transports need: the gateway would refuse to start otherwise.
      const { config, bindings, place } = loadSite(file);
      const { describeRange, rangeCounts } = await import('../../core/device-ranges.js');
      const n = (x: number) => x.toLocaleString('en-US');
      const lines = [`${file}: ok (${n(bindings.length)} devices, ${n(config.cloudSync.fireDepartments.length)} fire departments)`];
      // What each range stands for, so a typo in a number shows before the gateway subscribes to 10,000 topics.
      for (const r of rangeCounts(config.gateway.devices)) lines.push(`  ${place(['gateway', 'devices', r.entry])}: ${describeRange(r.range)}, ${n(r.count)} devices of ${r.range.profile}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
