import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBacklogBench } from './backlog.js';

/**
 * The backlog benchmark on its own:
 *   node --import tsx bench/backlog-main.ts [backlogReadings] [liveRatePerSec]
 * Prints the figures and saves them with the machine and the commit in
 * bench/results/backlog-<timestamp>.json.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [n, rate] = process.argv.slice(2).map(Number);
const figures = await runBacklogBench({
  ...(n ? { backlogReadings: n } : {}),
  ...(rate ? { liveRatePerSec: rate } : {}),
  log: (line) => process.stderr.write(`${line}\n`),
});
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  // not a git checkout
}
const result = {
  bench: 'backlog',
  at: new Date().toISOString(),
  commit,
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  figures,
};
const file = join(root, 'bench', 'results', `backlog-${result.at.replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\nsaved ${file}\n`);
