import type { Command } from 'commander';
import { CosafeError } from '../../core/errors.js';
import { getFromHub, hubClientOptions, type HubClientOptions } from '../hub-client.js';
import { intOption } from './options.js';

interface ReadingsOptions extends HubClientOptions {
  site?: string;
  device?: string;
  metric?: string;
  since: string;
  limit: number;
  json?: boolean;
}

interface Row {
  site: string;
  device: string;
  metric: string;
  value: number;
  unit: string;
  quality: string;
  time: number;
}

export function registerReadings(program: Command): void {
  hubClientOptions(program.command('readings').description('show the latest value of every device, or the recent history of one metric (--device and --metric)'))
    .option('--site <site>', 'only this site')
    .option('--device <device>', 'only this device')
    .option('--metric <metric>', 'with --device: the history of this metric')
    .option('--since <duration>', 'with --metric: how far back (e.g. 90s, 15m, 2h, 1d)', '1h')
    .option('--limit <n>', 'with --metric: at most this many readings', intOption('--limit', 1, 10_000), 50)
    .option('--json', 'print JSON instead of a table')
    .addHelpText('after', '\nExamples:\n  cosafe readings\n  cosafe readings --device temp-kitchen --metric temperature --since 15m')
    .action(async (o: ReadingsOptions) => {
      if (o.metric && !o.device) throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--metric needs --device');
      const params = new URLSearchParams();
      if (o.site) params.set('site', o.site);
      if (o.device) params.set('device', o.device);
      let url: string;
      if (o.metric) {
        params.set('metric', o.metric);
        params.set('since', String(Date.now() - parseDuration(o.since)));
        params.set('limit', String(o.limit));
        url = `/api/v1/readings/history?${params}`;
      } else {
        url = `/api/v1/readings/latest?${params}`;
      }
      const body = await getFromHub<{ readings?: Row[] }>(o, url);
      const rows = body.readings ?? [];
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no readings yet\n');
        return;
      }
      process.stdout.write(table(['time', 'site', 'device', 'metric', 'value', 'unit', 'quality'], rows.map((r) => [new Date(r.time).toISOString(), r.site, r.device, r.metric, String(r.value), r.unit, r.quality])));
    });
}

export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `--since must look like 90s, 15m, 2h or 1d, not "${s}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}
