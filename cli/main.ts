import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isCosafeError } from '../core/errors.js';
import { registerCredentials } from './commands/credentials.js';
import { registerDashboards } from './commands/dashboards.js';
import { registerDemo } from './commands/demo.js';
import { registerProfiles } from './commands/profiles.js';
import { registerReadings } from './commands/readings.js';
import { registerSites } from './commands/sites.js';
import { registerStatus } from './commands/status.js';
import { registerConfigCheck, registerRoles } from './commands/roles.js';

/** Which code runs (bin/cosafe.js chooses): the build in dist/, or the sources through tsx when there is none or it is older than they. */
function runningFrom(): string {
  if (import.meta.url.endsWith('.ts')) return 'from the TypeScript sources';
  const { started } = JSON.parse(readFileSync(new URL('../build.json', import.meta.url), 'utf8')) as { started: number };
  return `build of ${new Date(started).toISOString()}`;
}

/** The commands that run until stopped; the others print something and end. */
const SERVERS = new Set(['demo', 'run', 'hub', 'broker', 'gateway', 'cloud-sync']);
if (!SERVERS.has(process.argv[2] ?? '')) {
  // A reader that has what it wanted (`cosafe profiles list | head`) closes the pipe: the rest is not
  // wanted, and that is no error. A server keeps Node's default: its log is not a reader's to end quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const program = new Command('cosafe')
  .description('cosafe: an edge sensor hub for community safety devices.\nSensors to InfluxDB, fire alarms to fire departments (signed webhooks).')
  .version(`0.1.0 (${runningFrom()})`)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerDemo(program);
registerRoles(program);
registerConfigCheck(program);
registerReadings(program);
registerProfiles(program);
registerStatus(program);
registerCredentials(program);
registerSites(program);
registerDashboards(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed the message (or the help/version text).
    process.exit(err.exitCode);
  }
  if (isCosafeError(err)) {
    process.stderr.write(`cosafe: ${err.describe()}\n`);
    process.exit(err.code === 'COSAFE_ERR_CLI_USAGE' ? 2 : 1);
  }
  // Anything else is a bug: show everything.
  process.stderr.write(`cosafe: unexpected error (a bug; please report it)\n${(err as Error).stack ?? String(err)}\n`);
  process.exit(70);
}
