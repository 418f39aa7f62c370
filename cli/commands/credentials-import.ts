import { closeSync, existsSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Command } from 'commander';
import { z } from 'zod';
import { CredentialRole, type Identity } from '../../broker/auth/identity.js';
import { ID_PLACEHOLDER, parseRange, rangeIds } from '../../core/device-ranges.js';
import { CosafeError } from '../../core/errors.js';
import { openPrivateFile } from '../../core/private-files.js';
import { parseYamlText } from '../../core/yaml-file.js';
import { identityFrom, openStore, storeOptions, type AddOptions, type SCOPE_FLAGS, type StoreOptions } from './credentials.js';

/** The columns of a CSV import, and the keys of a YAML one: the flags of "add" (spelled out: credentials.ts imports this file). */
export const IMPORT_COLUMNS = ['role', 'id', 'site', 'gateway', 'device', 'district', 'topic', 'prefix'] as const satisfies readonly ('role' | 'id' | (typeof SCOPE_FLAGS)[number])[];

const Entry = z.object(Object.fromEntries(IMPORT_COLUMNS.map((k) => [k, z.string().min(1).optional()])) as Record<(typeof IMPORT_COLUMNS)[number], z.ZodOptional<z.ZodString>>).strict();
const ImportFile = z.union([z.array(Entry), z.object({ credentials: z.array(Entry) }).strict()]);
type Entry = z.infer<typeof Entry>;

interface ImportOptions extends StoreOptions {
  out?: string;
  stdout?: boolean;
  role?: CredentialRole;
  site?: string;
}

/**
 * `cosafe credentials import FILE`: many credentials (a fleet of devices, the
 * gateways of a district) from CSV or YAML, all or nothing in one
 * transaction. The secrets go once into a file only its owner can read
 * (created 0600, never overwritten), not to the terminal, where they would
 * stay in scrollback and CI logs; `--stdout` prints them when that is wanted.
 */
export function registerCredentialsImport(cmd: Command): void {
  storeOptions(
    cmd
      .command('import')
      .description('issue many credentials from a CSV or YAML file, all or none; the secrets go once to a file only you can read')
      .argument('<file>', `.csv with a header of ${IMPORT_COLUMNS.join(',')} (role and id may be left out as with "add"), or .yaml: a list of the same keys`)
      .option('--out <file>', 'where the secrets are written (CSV: id,role,username,secret), created 0600; an existing file is not overwritten (default <file>.secrets.csv)')
      .option('--stdout', 'print the secrets (CSV) instead of writing them to a file')
      .option('--role <role>', 'the role of entries that name none')
      .option('--site <site>', 'the site of entries that name none (a fleet of one site)')
      .addHelpText(
        'after',
        `
Example devices.csv (ids default to <site>.<device> as with "add"):
  role,site,device,topic
  device,bakery-12,th-0001,sensors/th-0001
  device,bakery-12,th-0002,sensors/th-0002
  device,bakery-12,th-0003..th-1000,sensors/{id}
(a device written as first..last is every device of that range, as a range in gateway.devices;
{id} in topic or id is each device's id)
`,
      ),
  ).action(async (file: string, o: ImportOptions) => {
    if (o.role !== undefined && !CredentialRole.options.includes(o.role)) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `--role must be one of ${CredentialRole.options.join(', ')}`);
    const { identities, where } = readImportFile(file, { role: o.role, site: o.site });
    const out = o.stdout ? undefined : (o.out ?? `${file.slice(0, file.length - extname(file).length)}.secrets.csv`);
    // The output file first: a run that could not keep the secrets must not issue them.
    if (out && existsSync(out)) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `${out} exists; secrets are written to a new file only (give another --out, or remove it)`);
    const fd = out ? openPrivateFile(out, 'wx') : undefined;
    const store = openStore(o);
    try {
      const issued = await store.addMany(identities, where).catch((err: unknown) => {
        if (fd !== undefined) {
          closeSync(fd);
          unlinkSync(out!);
        }
        throw err;
      });
      const csv = ['id,role,username,secret', ...issued.map(({ credential: c, secret }) => `${c.identity.id},${c.identity.role},${c.identity.id},${secret}`)].join('\n') + '\n';
      if (fd === undefined) {
        process.stdout.write(csv);
        return;
      }
      writeSync(fd, csv);
      closeSync(fd);
      const summary = { issued: issued.length, store: store.path, secrets: out };
      process.stdout.write(
        o.json
          ? `${JSON.stringify(summary, null, 2)}\n`
          : `issued ${issued.length} credentials in ${store.path}; their secrets are in ${out} (mode 0600), shown nowhere else: hand them to the devices, then delete the file\n`,
      );
    } finally {
      store.close();
    }
  });
}

/** The identities of an import file, every problem of every entry at once (`file:line field: why`). */
export function readImportFile(file: string, defaults: { role?: CredentialRole | undefined; site?: string | undefined } = {}): { identities: Identity[]; where: (i: number) => string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_CLI_USAGE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const csv = extname(file).toLowerCase() === '.csv';
  const entries = csv ? parseImportCsv(text, file) : toList(parseYamlText(text, file, ImportFile, 'COSAFE_ERR_CLI_USAGE'));
  // CSV: line 1 is the header. YAML: the entry's place in the list.
  const where = (i: number) => (csv ? `${file}:${i + 2}` : `${file} entry ${i + 1}`);
  if (entries.length === 0) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `${file} lists no credentials`);
  const problems: string[] = [];
  const identities: Identity[] = [];
  const lines: number[] = [];
  expandRanges(entries, where, problems).forEach(([e, i]) => {
    const role = (e.role ?? defaults.role) as CredentialRole | undefined;
    if (!role || !CredentialRole.options.includes(role)) {
      problems.push(`${where(i)} role: ${role ? `"${role}" is not one of` : 'missing (or give --role): one of'} ${CredentialRole.options.join(', ')}`);
      return;
    }
    // An owner's sites are ";"-separated in one cell (as a site's hazards in `cosafe sites import`).
    const site = e.site ?? (role !== 'admin' ? defaults.site : undefined);
    const flags = { ...e, role, ...(site !== undefined ? { site: site.split(';').map((x) => x.trim()).filter(Boolean) } : {}) } as Omit<AddOptions, keyof StoreOptions>;
    try {
      identities.push(identityFrom(flags));
      lines.push(i);
    } catch (err) {
      if (!(err instanceof CosafeError)) throw err;
      // The flags' words, as the file's: "--site is required" is "site is required" here.
      problems.push(...err.details.map((d) => `${where(i)} ${d.replace(/--([a-z]+)/g, '$1')}`));
    }
  });
  if (problems.length) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `${basename(file)} has ${problems.length} error${problems.length === 1 ? '' : 's'}; nothing was issued`, { details: problems });
  // The store names a refused identity by its entry: a range's devices all point at the range's line.
  return { identities, where: (k) => where(lines[k] ?? k) };
}

/** `th-0001..th-1000`: a device range, as in the config (core/device-ranges.ts). */
const RANGE = /^(.+)\.\.(.+)$/;

/**
 * A `device` written as a range (`th-0001..th-1000`) is one entry per device
 * of it, as `range: { from, to }` is in `gateway.devices`, so the fleet a
 * config names in one line is issued from one line; `{id}` in `topic` or `id`
 * becomes each device's id. Each entry comes with its place in the file.
 */
function expandRanges(entries: readonly Entry[], where: (i: number) => string, problems: string[]): [Entry, number][] {
  return entries.flatMap((e, i): [Entry, number][] => {
    const m = e.device ? RANGE.exec(e.device) : null;
    if (!m) return [[e, i]];
    const parsed = parseRange({ from: m[1]!, to: m[2]! });
    if (typeof parsed === 'string') {
      problems.push(`${where(i)} device: ${e.device} is not a range: ${parsed}`);
      return [];
    }
    const fill = (v: string | undefined, id: string) => v?.split(ID_PLACEHOLDER).join(id);
    return rangeIds(parsed).map((id): [Entry, number] => [{ ...e, device: id, ...(e.topic ? { topic: fill(e.topic, id) } : {}), ...(e.id ? { id: fill(e.id, id) } : {}) }, i]);
  });
}

function parseImportCsv(text: string, file: string): Entry[] {
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<string, string>[];
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_CLI_USAGE', `${file} is not valid CSV: ${(err as Error).message}`, { cause: err });
  }
  const unknown = Object.keys(rows[0] ?? {}).filter((h) => !(IMPORT_COLUMNS as readonly string[]).includes(h));
  if (unknown.length) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `${file} has unknown columns: ${unknown.join(', ')} (known: ${IMPORT_COLUMNS.join(', ')})`);
  // An empty cell is no value (a CSV has every column on every row).
  return rows.map((row) => Object.fromEntries(Object.entries(row).filter(([, v]) => v !== '')) as Entry);
}

function toList(parsed: z.infer<typeof ImportFile>): Entry[] {
  return Array.isArray(parsed) ? parsed : parsed.credentials;
}
