import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { CosafeError } from '../../core/errors.js';
import { lineOfPath, loadYamlFile } from '../../core/yaml-file.js';
import { loadBuiltinProfiles, loadProfileDir } from '../../device-profiles/loader.js';
import { checkSamples } from '../../device-profiles/samples.js';
import { Profile } from '../../device-profiles/schema.js';

export function registerProfiles(program: Command): void {
  const profiles = program.command('profiles').description('device profiles: validate your own, list and show the available ones');

  profiles
    .command('validate')
    .description('check profile files: the schema, and that every recorded sample decodes as the profile says')
    .argument('<path>', 'a profile file (.yaml) or a directory of them')
    .action((path: string) => {
      const files = statSync(path).isDirectory()
        ? readdirSync(path)
            .filter((f) => /\.ya?ml$/.test(f))
            .sort()
            .map((f) => join(path, f))
        : [path];
      if (files.length === 0) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `no .yaml files in ${path}`);
      const problems: string[] = [];
      const ids = new Map<string, string>();
      for (const file of files) {
        try {
          const p = loadYamlFile(file, Profile, { read: 'COSAFE_ERR_PROFILE_INVALID', invalid: 'COSAFE_ERR_PROFILE_INVALID' });
          if (ids.has(p.id)) problems.push(`${file}:1 id: "${p.id}" is also the id of ${ids.get(p.id)}`);
          ids.set(p.id, file);
          const text = readFileSync(file, 'utf8');
          for (const problem of checkSamples(p)) {
            const index = Number(/^samples\[(\d+)\]/.exec(problem)?.[1] ?? 0);
            problems.push(`${file}:${lineOfPath(text, ['samples', index])} ${problem}`);
          }
        } catch (err) {
          if (!(err instanceof CosafeError)) throw err;
          problems.push(...(err.details.length ? err.details : [err.message]));
        }
      }
      if (problems.length) {
        throw new CosafeError('COSAFE_ERR_PROFILE_INVALID', `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}`, { details: problems });
      }
      process.stdout.write(`${files.length} profile${files.length === 1 ? '' : 's'} valid\n`);
    });

  profiles
    .command('list')
    .description('list the built-in profiles (and those of --dir)')
    .option('--dir <dir>', 'also a directory of your own profiles')
    .action((o: { dir?: string }) => {
      const all = available(o.dir);
      const rows = [...all.values()].sort((a, b) => a.transport.localeCompare(b.transport) || a.id.localeCompare(b.id));
      const w = Math.max(...rows.map((p) => p.id.length));
      process.stdout.write(`${'id'.padEnd(w)}  ${'transport'.padEnd(12)}  model\n`);
      for (const p of rows) process.stdout.write(`${p.id.padEnd(w)}  ${p.transport.padEnd(12)}  ${p.vendor} ${p.model}\n`);
    });

  profiles
    .command('show')
    .description('show one profile: what it measures, how it is read, which conditions it raises')
    .argument('<id>', 'profile id (see `cosafe profiles list`)')
    .option('--dir <dir>', 'also a directory of your own profiles')
    .action((id: string, o: { dir?: string }) => {
      const all = available(o.dir);
      const p = all.get(id);
      if (!p) throw new CosafeError('COSAFE_ERR_PROFILE_UNKNOWN', `no profile "${id}"; known: ${[...all.keys()].sort().join(', ')}`);
      const { samples: _samples, ...rest } = p;
      process.stdout.write(stringify(rest, { lineWidth: 120 }));
    });
}

function available(dir?: string) {
  const all = loadBuiltinProfiles();
  if (dir) for (const [id, p] of loadProfileDir(dir)) all.set(id, p);
  return all;
}
