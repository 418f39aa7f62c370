import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CredentialStore, credentialStorePath, type StoredCredential } from '../../broker/auth/credential-store.js';
import { CredentialRole, describeIdentity, roleScope, type Identity } from '../../broker/auth/identity.js';
import { loadConfigFile } from '../../core/config.js';
import { CosafeError } from '../../core/errors.js';
import { table } from '../table.js';
import { registerCredentialsImport } from './credentials-import.js';

export interface StoreOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

export interface AddOptions extends StoreOptions {
  role: CredentialRole;
  id?: string;
  /** Every --site given: one for a gateway, device or bridge; one or more for an owner. */
  site?: string[];
  gateway?: string;
  device?: string;
  district?: string;
  topic?: string;
  prefix?: string;
}

export const SCOPE_FLAGS = ['site', 'gateway', 'device', 'district', 'topic', 'prefix'] as const;

/**
 * `cosafe credentials`: issue, list, rotate and revoke the credentials the
 * broker accepts. Works on the store file in the data directory, so it needs
 * no running hub; a running hub notices revocations and rotations within a
 * second (broker.revocationCheckMs) and ends the sessions they concern.
 */
export function registerCredentials(program: Command): void {
  const cmd = program
    .command('credentials')
    .description('issue, list, rotate and revoke the credentials of gateways, devices, services, fire departments, agencies, owners, monitors and admins')
    .addHelpText(
      'after',
      `
The store is <dataDir>/credentials.db (dataDir from --config, or --data-dir, default .cosafe).
Secrets are never stored, only their hashes (SHA-256 of 256 random bits): a secret is printed once, by "add" or "rotate".
The username an MQTT client (or a person on the hub's pages) logs in with is the identity id.

Examples:
  cosafe credentials add --role gateway --site bakery-12 --gateway gw-1 --district north -c cosafe.yaml
  cosafe credentials add --role device --site bakery-12 --device smoke-oven -c cosafe.yaml
  cosafe credentials add --role bridge --site bakery-12 --prefix zigbee2mqtt -c cosafe.yaml
  cosafe credentials add --role fire-department --district north --id fd-north-station-3 -c cosafe.yaml
  cosafe credentials add --role owner --id anna.mueller --site bakery-12 --site bakery-14 -c cosafe.yaml
  cosafe credentials add --role monitor --id prometheus -c cosafe.yaml
  cosafe credentials import devices.csv --out device-secrets.csv -c cosafe.yaml
  cosafe credentials list -c cosafe.yaml
  cosafe credentials rotate bakery-12.gw-1 -c cosafe.yaml
  cosafe credentials revoke bakery-12.smoke-oven -c cosafe.yaml
`,
    );

  storeOptions(
    cmd
      .command('add')
      .description('issue a credential and print its secret (once)')
      .addOption(new Option('--role <role>', 'what the identity is').choices(CredentialRole.options).makeOptionMandatory())
      .option('--id <id>', 'identity id, the MQTT username (default for gateway and device: <site>.<gateway|device>)', once('--id'))
      .option('--site <site>', 'gateway, device, bridge: the site it belongs to; owner: a site they own (repeat for each)', (v: string, previous: string[] = []) => [...previous, v])
      .option('--gateway <id>', 'gateway: its gateway id (gateway.id in its config)', once('--gateway'))
      .option('--device <id>', 'device: its device id (as in gateway.devices)', once('--device'))
      .option('--district <district>', "fire-department: the district it serves; gateway: its site's district; agency: only this district", once('--district'))
      .option(
        '--topic <topic>',
        "device: the one topic of its own outside cosafe/v1/ (e.g. zigbee2mqtt/store-sensor) it may publish on too; its site's gateway may read it",
        once('--topic', 'a device has one topic of its own; a bridge publishing for many devices under one prefix is --role bridge --prefix <prefix>'),
      )
      .option(
        '--prefix <prefix>',
        "bridge: the topic prefix it publishes under for all its devices (zigbee2mqtt's mqtt.base_topic, e.g. zigbee2mqtt); its site's gateway may read it",
        once('--prefix', 'a bridge has one prefix (run a second bridge with its own credential)'),
      )
      .addHelpText(
        'after',
        `
Scope by role (required, [optional]):
${Object.entries(roleScope)
  .map(([role, s]) => `  ${role.padEnd(16)} ${[...s.required.map((f) => `--${f}`), ...s.optional.map((f) => `[--${f}]`)].join(' ') || '(none)'}`)
  .join('\n')}
`,
      ),
  ).action(async (o: AddOptions) => {
    const identity = identityFrom(o);
    const store = openStore(o);
    try {
      const { credential, secret } = await store.add(identity);
      if (o.json) {
        out(JSON.stringify({ ...publicView(credential), username: credential.identity.id, secret }, null, 2));
        return;
      }
      out(
        [
          `created ${describeIdentity(credential.identity)} as "${credential.identity.id}" in ${store.path}`,
          `  username: ${credential.identity.id}`,
          `  secret:   ${secret}`,
          `The secret is shown only now and is not stored: ${HANDOVER[credential.identity.role] ?? 'give it to the client (e.g. gateway.credentials in its config).'}`,
          `Lost it? "cosafe credentials rotate ${credential.identity.id}" makes a new one.`,
        ].join('\n'),
      );
    } finally {
      store.close();
    }
  });

  registerCredentialsImport(cmd);

  storeOptions(
    cmd
      .command('list')
      .description('list credentials: id, role, scope and state (never secrets or hashes)')
      .addOption(new Option('--role <role>', 'only this role').choices(CredentialRole.options))
      .option('--site <site>', 'only this site')
      .option('--all', 'include revoked credentials'),
  ).action((o: StoreOptions & { role?: string; site?: string; all?: boolean }) => {
    const store = openStore(o);
    try {
      const rows = store
        .list()
        .filter((c) => (o.all || c.revokedAt === null) && (!o.role || c.identity.role === o.role) && (!o.site || sitesOf(c.identity).includes(o.site)));
      if (o.json) return out(JSON.stringify(rows.map(publicView), null, 2));
      if (rows.length === 0) return out(`no credentials in ${store.path}${o.all ? '' : ' (--all also shows revoked ones)'}`);
      out(
        table(
          ['id', 'role', 'scope', 'state', 'created', 'rotated'],
          rows.map((c) => [c.identity.id, c.identity.role, scopeText(c.identity), c.revokedAt ? `revoked ${iso(c.revokedAt)}` : 'active', iso(c.createdAt), c.rotatedAt ? iso(c.rotatedAt) : '-']),
        ),
      );
    } finally {
      store.close();
    }
  });

  storeOptions(
    cmd
      .command('rotate')
      .description('replace the secret of an identity: the old one stops working and its sessions are ended')
      .argument('<id>', 'identity id'),
  ).action(async (id: string, o: StoreOptions) => {
    const store = openStore(o);
    try {
      const { credential, secret } = await store.rotate(id);
      if (o.json) return out(JSON.stringify({ ...publicView(credential), username: id, secret }, null, 2));
      out([`rotated "${id}": the old secret no longer works`, `  username: ${id}`, `  secret:   ${secret}`, 'The secret is shown only now.'].join('\n'));
    } finally {
      store.close();
    }
  });

  storeOptions(
    cmd
      .command('revoke')
      .description('revoke an identity for good: a running hub disconnects it within a second')
      .argument('<id>', 'identity id'),
  ).action((id: string, o: StoreOptions) => {
    const store = openStore(o);
    try {
      const credential = store.revoke(id);
      if (o.json) return out(JSON.stringify(publicView(credential), null, 2));
      out(`revoked "${id}" (${describeIdentity(credential.identity)}); a running hub ends its sessions within a second`);
    } finally {
      store.close();
    }
  });
}

/** What to do with a new secret, for the roles whose holder is not a program with a config file. */
const HANDOVER: Partial<Record<Identity['role'], string>> = {
  owner: 'give it to the owner: they sign in on the hub\'s pages (http://<hub>/web/login/) with the username and this secret.',
  'fire-department': 'give it to the department: its dispatchers sign in on the console (http://<hub>/web/login/), its systems use HTTP Basic or MQTT.',
  monitor: 'put it in Prometheus\'s scrape config (basic_auth: username and password_file) for /metrics.',
  admin: 'keep it safe: it may do everything, over MQTT and HTTP.',
};

/**
 * A flag that may be given once. Commander keeps only the last of a repeated
 * flag; a credential silently scoped to the second of two topics is a
 * credential that does not do what its operator meant.
 */
function once(flag: string, why = 'give it once') {
  return (value: string, previous: string | undefined): string => {
    if (previous !== undefined) throw new InvalidArgumentError(`${flag} is given twice ("${previous}", "${value}"): ${why}`);
    return value;
  };
}

export function storeOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'config file: the store is in its dataDir')
    .option('--data-dir <dir>', 'data directory of the hub (default .cosafe)')
    .option('--json', 'print JSON');
}

export function openStore(o: StoreOptions): CredentialStore {
  if (o.config && o.dataDir) throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--config and --data-dir both name the data directory: give one');
  const dataDir = o.config ? loadConfigFile(o.config).dataDir : resolve(o.dataDir ?? '.cosafe');
  return CredentialStore.open(credentialStorePath(dataDir));
}

/** The identity the flags describe; every missing or misplaced flag is reported at once. */
export function identityFrom(o: Omit<AddOptions, keyof StoreOptions>): Identity {
  const scope = roleScope[o.role];
  const problems: string[] = [];
  for (const f of scope.required) if (!o[f as (typeof SCOPE_FLAGS)[number]]) problems.push(`--${f} is required for role ${o.role}`);
  for (const f of SCOPE_FLAGS) if (o[f] && !scope.required.includes(f) && !scope.optional.includes(f)) problems.push(`--${f} does not apply to role ${o.role}`);
  // Commander keeps every --site; only an owner may have more than one.
  if (o.role !== 'owner' && (o.site?.length ?? 0) > 1) problems.push(`--site is given ${o.site!.length} times ("${o.site!.join('", "')}"): a ${o.role} belongs to one site (an owner of several sites is --role owner)`);
  const site = o.site?.[0];
  const derived =
    o.role === 'gateway' && site && o.gateway ? `${site}.${o.gateway}`
    : o.role === 'device' && site && o.device ? `${site}.${o.device}`
    : o.role === 'bridge' && site && o.prefix ? bridgeId(site, o.prefix)
    : undefined;
  const id = o.id ?? derived;
  if (!id) problems.push(`--id is required for role ${o.role}`);
  if (problems.length) throw new CosafeError('COSAFE_ERR_CLI_USAGE', 'cannot issue this credential', { details: problems });
  const fields = Object.fromEntries(SCOPE_FLAGS.filter((f) => f !== 'site' && o[f] !== undefined).map((f) => [f, o[f]]));
  const sites = o.role === 'owner' ? { sites: o.site } : site ? { site } : {};
  return { role: o.role, id, ...fields, ...sites } as Identity;
}

/** `bakery-12.zigbee2mqtt` for prefix `zigbee2mqtt`; undefined (ask for --id) when the prefix is no id material. */
function bridgeId(site: string, prefix: string): string | undefined {
  const id = `${site}.${prefix.replaceAll('/', '.')}`;
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id) ? id : undefined;
}

function publicView(c: StoredCredential) {
  return {
    ...c.identity,
    state: c.revokedAt ? 'revoked' : 'active',
    createdAt: iso(c.createdAt),
    rotatedAt: c.rotatedAt ? iso(c.rotatedAt) : null,
    revokedAt: c.revokedAt ? iso(c.revokedAt) : null,
  };
}

/** The sites a credential belongs to (one; an owner's several; none for a district or the hub's roles). */
function sitesOf(i: Identity): readonly string[] {
  if (i.role === 'owner') return i.sites;
  const site = (i as { site?: string }).site;
  return site ? [site] : [];
}

function scopeText(i: Identity): string {
  const s = i as { site?: string; gateway?: string; device?: string; district?: string; topic?: string; prefix?: string; sites?: string[] };
  return [s.site && `site=${s.site}`, s.sites && `sites=${s.sites.join(',')}`, s.gateway && `gateway=${s.gateway}`, s.device && `device=${s.device}`, s.district && `district=${s.district}`, s.topic && `topic=${s.topic}`, s.prefix && `prefix=${s.prefix}/#`]
    .filter(Boolean)
    .join(' ') || '-';
}

const iso = (t: number) => new Date(t).toISOString();

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
