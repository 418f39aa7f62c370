import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readSitesFile } from '../../cloud-sync/registry/site-import.js';
import { SiteStore, siteStorePath, unknownSite } from '../../cloud-sync/registry/site-store.js';
import type { Site, SiteInput } from '../../cloud-sync/registry/site.js';
import { loadConfigFile } from '../../core/config.js';
import { CosafeError } from '../../core/errors.js';
import { table } from '../table.js';

interface StoreOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

interface AddOptions extends StoreOptions {
  id: string;
  name: string;
  address: string;
  lat: string;
  lon: string;
  district: string;
  occupancy?: string;
  hazard: string[];
  contactName?: string;
  contactRole?: string;
  contactPhone?: string;
  contactEmail?: string;
  notes?: string;
  replace?: boolean;
}

/**
 * `cosafe sites`: the registry of sites, kept in `<dataDir>/sites.db` so that
 * an operator of hundreds of sites adds, imports and removes them without
 * editing (and reloading) the config file; a running hub sees each change at
 * the next alarm.
 */
export function registerSites(program: Command): void {
  const cmd = program
    .command('sites')
    .description('register the sites the hub serves: address, position, district, hazards, contacts')
    .addHelpText(
      'after',
      `
The registry is <dataDir>/sites.db (dataDir from --config, or --data-dir, default .cosafe).
The district of a site decides which fire department gets its alarms; the address, position,
hazards and contacts go with every alarm to that department (never to residents).

Examples:
  cosafe sites add --id bakery-12 --name "Bakery Müller" --address "Hauptstr. 12, 10115 Berlin" \\
    --lat 52.5301 --lon 13.3849 --district north --occupancy "bakery, flats above" \\
    --hazard "LPG tank in the yard" --contact-name "Anna Müller" --contact-phone "+49 30 1234567" -c cosafe.yaml
  cosafe sites import sites.csv -c cosafe.yaml        # or sites.yaml; all or nothing
  cosafe sites list --district north -c cosafe.yaml
  cosafe sites show bakery-12 -c cosafe.yaml
  cosafe sites remove bakery-12 -c cosafe.yaml
`,
    );

  storeOptions(
    cmd
      .command('add')
      .description('register a site')
      .requiredOption('--id <id>', 'site id, as gateway.site in its gateways\' config')
      .requiredOption('--name <name>', 'the name the fire department knows it by')
      .requiredOption('--address <address>', 'street address')
      .requiredOption('--lat <degrees>', 'latitude (WGS 84)')
      .requiredOption('--lon <degrees>', 'longitude (WGS 84)')
      .requiredOption('--district <district>', 'the district whose fire department answers for it')
      .option('--occupancy <text>', 'what the building is used for')
      .option('--hazard <text>', 'a hazard firefighters must know (repeat for more)', (v: string, all: string[]) => [...all, v], [])
      .option('--contact-name <name>', 'a contact person')
      .option('--contact-role <role>', "the contact's role (owner, caretaker, ...)")
      .option('--contact-phone <phone>', "the contact's phone number")
      .option('--contact-email <email>', "the contact's e-mail address")
      .option('--notes <text>', 'anything else the fire department should know')
      .option('--replace', 'overwrite a site with the same id'),
  ).action((o: AddOptions) => {
    const contact = o.contactName ? [clean({ name: o.contactName, role: o.contactRole, phone: o.contactPhone, email: o.contactEmail })] : [];
    const input: SiteInput = clean({
      id: o.id,
      name: o.name,
      address: o.address,
      location: { lat: Number(o.lat), lon: Number(o.lon) },
      district: o.district,
      occupancy: o.occupancy,
      hazards: o.hazard,
      contacts: contact as SiteInput['contacts'],
      notes: o.notes,
    }) as SiteInput;
    withStore(o, (store) => {
      const site = store.put(input, { replace: o.replace ?? false });
      out(o.json ? JSON.stringify(site, null, 2) : `registered site "${site.id}" (${site.name}) in district ${site.district} in ${store.path}`);
    });
  });

  storeOptions(cmd.command('import').description('register (or update) every site of a YAML or CSV file, all or nothing').argument('<file>', 'sites.yaml, sites.json or sites.csv')).action(
    (file: string, o: StoreOptions) => {
      const sites = readSitesFile(file);
      withStore(o, (store) => {
        const before = new Set(store.list().map((s) => s.id));
        store.putAll(sites);
        const added = sites.filter((s) => !before.has(s.id)).length;
        const result = { imported: sites.length, added, updated: sites.length - added };
        out(o.json ? JSON.stringify(result, null, 2) : `imported ${sites.length} site(s) from ${file}: ${added} added, ${result.updated} updated`);
      });
    },
  );

  storeOptions(cmd.command('list').description('list the registered sites').option('--district <district>', 'only this district')).action((o: StoreOptions & { district?: string }) =>
    withStore(o, (store) => {
      const sites = store.list(o.district ? { district: o.district } : {});
      if (o.json) return out(JSON.stringify(sites, null, 2));
      if (sites.length === 0) return out(`no sites in ${store.path}${o.district ? ` for district ${o.district}` : ''}`);
      out(table(['id', 'name', 'district', 'address', 'position'], sites.map((s) => [s.id, s.name, s.district, s.address, `${s.location.lat}, ${s.location.lon}`])));
    }),
  );

  storeOptions(cmd.command('show').description('everything the registry knows of one site').argument('<id>', 'site id')).action((id: string, o: StoreOptions) =>
    withStore(o, (store) => {
      const site = store.get(id);
      if (!site) throw unknownSite(id, store.path);
      out(o.json ? JSON.stringify(site, null, 2) : describe(site));
    }),
  );

  storeOptions(cmd.command('remove').description('remove a site from the registry').argument('<id>', 'site id')).action((id: string, o: StoreOptions) =>
    withStore(o, (store) => {
      const site = store.remove(id);
      out(o.json ? JSON.stringify(site, null, 2) : `removed site "${id}" (${site.name}); alarms of its gateways now go to every fire department until it is registered again`);
    }),
  );
}

function describe(s: Site): string {
  const lines = [
    `${s.id}: ${s.name}`,
    `  district:  ${s.district}`,
    `  address:   ${s.address}`,
    `  position:  ${s.location.lat}, ${s.location.lon}`,
    ...(s.occupancy ? [`  occupancy: ${s.occupancy}`] : []),
    ...s.hazards.map((h, i) => `  ${i === 0 ? 'hazards:  ' : '          '} ${h}`),
    ...s.contacts.map((c, i) => `  ${i === 0 ? 'contacts: ' : '          '} ${[c.name, c.role, c.phone, c.email].filter(Boolean).join(', ')}`),
    ...(s.notes ? [`  notes:     ${s.notes}`] : []),
  ];
  return lines.join('\n');
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'config file: the registry is in its dataDir')
    .option('--data-dir <dir>', 'data directory of the hub (default .cosafe)')
    .option('--json', 'print JSON');
}

function withStore(o: StoreOptions, f: (store: SiteStore) => void): void {
  if (o.config && o.dataDir) throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--config and --data-dir both name the data directory: give one');
  const dataDir = o.config ? loadConfigFile(o.config).dataDir : resolve(o.dataDir ?? '.cosafe');
  const store = SiteStore.open(siteStorePath(dataDir));
  try {
    f(store);
  } finally {
    store.close();
  }
}

function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
