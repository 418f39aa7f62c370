import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import { CosafeError } from '../../core/errors.js';
import { parseYamlText } from '../../core/yaml-file.js';
import { Site, siteProblems } from './site.js';

/** A YAML (or JSON) file of sites: a list, or `{sites: [...]}`. */
const SiteFile = z.preprocess(
  (v) => (Array.isArray(v) ? { sites: v } : v),
  z
    .object({ sites: z.array(Site) })
    .strict()
    .transform((f) => f.sites),
);

/**
 * The columns of a CSV file of sites, as a spreadsheet exports them: one site
 * per row; `hazards` separated by ";"; one contact per row (add more in YAML).
 */
export const CSV_COLUMNS = ['id', 'name', 'address', 'lat', 'lon', 'district', 'occupancy', 'hazards', 'contact_name', 'contact_role', 'contact_phone', 'contact_email', 'notes'] as const;

/**
 * Reads the sites of a file for `cosafe sites import`. Every problem of every
 * row is reported at once (`file:line field: why`), and the file is taken all
 * or nothing: one bad row and nothing is imported.
 */
export function readSitesFile(file: string): Site[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_SITE_INVALID', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const sites = extname(file).toLowerCase() === '.csv' ? parseSitesCsv(text, file) : parseYamlText(text, file, SiteFile, 'COSAFE_ERR_SITE_INVALID');
  const seen = new Map<string, number>();
  const twice = sites.flatMap((s, i) => {
    const first = seen.get(s.id);
    seen.set(s.id, i);
    return first === undefined ? [] : [`${file}: site "${s.id}" is listed twice (entries ${first + 1} and ${i + 1})`];
  });
  if (twice.length) throw new CosafeError('COSAFE_ERR_SITE_INVALID', `${file} lists a site more than once`, { details: twice });
  return sites;
}

export function parseSitesCsv(text: string, file = 'sites.csv'): Site[] {
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<string, string>[];
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_SITE_INVALID', `${file} is not valid CSV: ${(err as Error).message}`, { cause: err });
  }
  const header = Object.keys(rows[0] ?? {});
  const unknown = header.filter((h) => !(CSV_COLUMNS as readonly string[]).includes(h));
  if (unknown.length) throw new CosafeError('COSAFE_ERR_SITE_INVALID', `${file} has unknown columns: ${unknown.join(', ')} (known: ${CSV_COLUMNS.join(', ')})`);
  const problems: string[] = [];
  const sites: Site[] = [];
  rows.forEach((row, i) => {
    const v = (k: (typeof CSV_COLUMNS)[number]) => (row[k] === undefined || row[k] === '' ? undefined : row[k]);
    const contact = v('contact_name') ? [{ name: v('contact_name'), role: v('contact_role'), phone: v('contact_phone'), email: v('contact_email') }] : [];
    const input = {
      id: v('id'),
      name: v('name'),
      address: v('address'),
      location: { lat: num(v('lat')), lon: num(v('lon')) },
      district: v('district'),
      occupancy: v('occupancy'),
      hazards: (v('hazards') ?? '').split(';').map((h) => h.trim()).filter(Boolean),
      contacts: contact.map((c) => Object.fromEntries(Object.entries(c).filter(([, x]) => x !== undefined))),
      notes: v('notes'),
    };
    const r = Site.safeParse(JSON.parse(JSON.stringify(input)));
    // Line 1 is the header.
    if (r.success) sites.push(r.data);
    else problems.push(...siteProblems(r.error).map((p) => `${file}:${i + 2} ${p}`));
  });
  if (problems.length) throw new CosafeError('COSAFE_ERR_SITE_INVALID', `${file} has ${problems.length} error${problems.length === 1 ? '' : 's'}`, { details: problems });
  return sites;
}

function num(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : (s as unknown as number);
}
