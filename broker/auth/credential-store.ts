import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { systemClock, type Clock } from '../../core/clock.js';
import { CosafeError } from '../../core/errors.js';
import { openSharedDatabase } from '../../core/sqlite.js';
import { Identity, IdentityId, underPrefix } from './identity.js';
import { DECOY_HASH, hashIssuedSecret, isIssuedSecret, newSecret, schemeOf, verifySecret } from './secret-hash.js';
import { VerifiedSecrets } from './verified-secrets.js';

/** The store's file in the data directory; the CLI and the running hub open the same file. */
export function credentialStorePath(dataDir: string): string {
  return join(dataDir, 'credentials.db');
}

export interface StoredCredential {
  identity: Identity;
  /** Raised by every rotation: a session opened with an older secret is ended. */
  generation: number;
  createdAt: number;
  rotatedAt: number | null;
  revokedAt: number | null;
}

/** A credential just issued, with its secret (shown once, never stored). */
export interface IssuedCredential {
  credential: StoredCredential;
  secret: string;
}

export interface CredentialStoreOptions {
  /** Secrets verified in this process (shared by the broker and the HTTP API of one process); a fresh set by default. */
  verified?: VerifiedSecrets;
}

/** A credential's row as stored, hash included: what the brokers of a cluster replicate to each other (backends/redis-credentials.ts), nothing else. */
export interface CredentialRow {
  id: string;
  role: string;
  site: string | null;
  gateway: string | null;
  device: string | null;
  district: string | null;
  topic: string | null;
  prefix: string | null;
  /** An owner's sites, as a JSON array. */
  sites: string | null;
  secret_hash: string;
  generation: number;
  created_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
}

/**
 * Credentials of gateways, MQTT devices, services, fire departments, agencies,
 * building owners, monitors and admins: in SQLite (WAL) in the data directory, so they survive restarts
 * and the `cosafe credentials` command can change them while the hub runs.
 * Secrets are never stored, only their hashes (secret-hash.ts: SHA-256 for
 * the 256-bit secrets issued here, scrypt in stores written before); a
 * secret is shown once, when it is made. Revoked credentials stay as rows (who had access, and until
 * when), and their ids are never reused.
 */
type Row = CredentialRow;

export class CredentialStore {
  // The broker looks credentials up on every login and every store change: statements are prepared once.
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly clock: Clock,
    private readonly verified: VerifiedSecrets,
  ) {}

  static open(path: string, clock: Clock = systemClock, options: CredentialStoreOptions = {}): CredentialStore {
    try {
      // The CLI and the hub write and read the file at the same time; only its owner may read the hashes.
      // FULL: a secret the CLI shows is on disk before it is shown, power cut or not.
      const db = openSharedDatabase(path, { synchronous: 'FULL' });
      // One process at a time: a hub starting while `cosafe credentials add` opens the file for the first
      // time both found the columns missing and both added them ("duplicate column name").
      db.transaction(() => {
        db.exec(`
          CREATE TABLE IF NOT EXISTS credential (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            site TEXT, gateway TEXT, device TEXT, district TEXT,
            secret_hash TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 1,
            created_at INTEGER NOT NULL,
            rotated_at INTEGER,
            revoked_at INTEGER
          );
          CREATE INDEX IF NOT EXISTS credential_site ON credential (site);
        `);
        // Added after the first release of the table: a device's own topic outside the contract.
        const columns = (db.prepare('PRAGMA table_info(credential)').all() as { name: string }[]).map((c) => c.name);
        if (!columns.includes('topic')) db.exec('ALTER TABLE credential ADD COLUMN topic TEXT');
        // ... and a bridge's topic prefix.
        if (!columns.includes('prefix')) db.exec('ALTER TABLE credential ADD COLUMN prefix TEXT');
        // ... and an owner's sites.
        if (!columns.includes('sites')) db.exec('ALTER TABLE credential ADD COLUMN sites TEXT');
      }).immediate();
      return new CredentialStore(db, path, clock, options.verified ?? new VerifiedSecrets());
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_CREDENTIALS_STORE', `cannot open the credential store ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Issues a credential; the secret is returned here and never again. */
  async add(input: Identity): Promise<IssuedCredential> {
    return (await this.addMany([input]))[0]!;
  }

  /**
   * Issues many credentials at once (`cosafe credentials import`), all or
   * nothing: every problem of every entry is reported together, and nothing is
   * written unless all of them can be, in one transaction. `where` names an
   * entry in errors (`devices.csv:12`).
   */
  async addMany(inputs: readonly Identity[], where: (index: number) => string = (i) => `entry ${i + 1}`): Promise<IssuedCredential[]> {
    const single = inputs.length === 1;
    const problems: string[] = [];
    let conflicts = 0;
    const identities: Identity[] = [];
    const claims = this.activeClaims();
    const districts = new Map<string, string>();
    const ids = new Map<string, number>();
    inputs.forEach((input, i) => {
      const at = `${where(i)} (${String(input.id)})`;
      const checked = this.validate(input);
      if ('problems' in checked) {
        if (single) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `invalid identity "${input.id}"`, { details: checked.problems });
        problems.push(...checked.problems.map((p) => `${at} ${p}`));
        return;
      }
      const identity = checked.identity;
      const earlier = ids.get(identity.id);
      ids.set(identity.id, i);
      const conflict =
        earlier !== undefined ? `identity "${identity.id}" is listed twice (${where(earlier)} and ${where(i)})`
        : this.row(identity.id) ? `identity "${identity.id}" already exists (ids of revoked credentials are not reused); choose another --id`
        : this.districtConflict(identity, districts) ?? claimConflict(identity, claims);
      if (conflict) {
        if (single) throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', conflict);
        problems.push(`${at} ${conflict}`);
        conflicts++;
        return;
      }
      const claim = claimOf(identity);
      if (claim) claims.push({ id: identity.id, ...claim });
      if (identity.role === 'gateway' && identity.district) districts.set(identity.site, identity.district);
      identities.push(identity);
    });
    if (problems.length) {
      const code = conflicts === problems.length ? 'COSAFE_ERR_CREDENTIALS_CONFLICT' : 'COSAFE_ERR_CLI_USAGE';
      throw new CosafeError(code, `${problems.length} of ${inputs.length} credentials cannot be issued; none was`, { details: problems });
    }
    const secrets = identities.map(() => newSecret());
    const hashes = secrets.map(hashIssuedSecret);
    const now = this.clock.now();
    const insert = this.sql('INSERT INTO credential (id, role, site, gateway, device, district, topic, prefix, sites, secret_hash, generation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)');
    try {
      // One transaction: all of them or (another process took an id meanwhile) none.
      this.db.transaction(() => {
        identities.forEach((identity, i) => {
          const scope = identity as { site?: string; gateway?: string; device?: string; district?: string; topic?: string; prefix?: string; sites?: string[] };
          insert.run(identity.id, identity.role, scope.site ?? null, scope.gateway ?? null, scope.device ?? null, scope.district ?? null, scope.topic ?? null, scope.prefix ?? null, scope.sites ? JSON.stringify(scope.sites) : null, hashes[i], now);
        });
      })();
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', single ? `identity "${identities[0]!.id}" already exists` : 'an identity was issued by someone else meanwhile; none was issued', { cause: err });
      }
      throw this.storeError('write', err);
    }
    return identities.map((identity, i) => ({ credential: this.find(identity.id)!, secret: secrets[i]! }));
  }

  /** Replaces the secret: the old one stops working at once, and sessions opened with it are ended by the hub. */
  async rotate(id: string): Promise<IssuedCredential> {
    this.active(id);
    const secret = newSecret();
    const hash = hashIssuedSecret(secret);
    const changed = this.sql('UPDATE credential SET secret_hash = ?, generation = generation + 1, rotated_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(hash, this.clock.now(), id).changes;
    if (changed !== 1) throw this.unknown(id);
    return { credential: this.find(id)!, secret };
  }

  /** Ends a credential for good; the hub disconnects its sessions within a second. */
  revoke(id: string): StoredCredential {
    this.active(id);
    this.verified.forget(id);
    this.sql('UPDATE credential SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.clock.now(), id);
    return this.find(id)!;
  }

  find(id: string): StoredCredential | undefined {
    const row = this.row(id);
    return row && toCredential(row);
  }

  list(): StoredCredential[] {
    return (this.sql('SELECT * FROM credential ORDER BY role, site, id').all() as Row[]).map(toCredential);
  }

  /** The district of a site, as recorded on its gateway credentials. */
  siteDistrict(site: string): string | undefined {
    const row = this.sql("SELECT district FROM credential WHERE role = 'gateway' AND site = ? AND district IS NOT NULL AND revoked_at IS NULL LIMIT 1")
      .get(site) as { district: string } | undefined;
    return row?.district;
  }

  /**
   * What a site's active devices and bridges publish outside the contract, as
   * filters its gateway may read: each device's own topic (see ForeignTopic)
   * and each bridge's `<prefix>/#`.
   */
  siteForeignFilters(site: string): string[] {
    const rows = this.sql("SELECT topic, prefix FROM credential WHERE role IN ('device', 'bridge') AND site = ? AND (topic IS NOT NULL OR prefix IS NOT NULL) AND revoked_at IS NULL")
      .all(site) as { topic: string | null; prefix: string | null }[];
    return rows.map((r) => (r.prefix !== null ? `${r.prefix}/#` : r.topic!));
  }

  /**
   * The active credential whose secret this is, or undefined. An unknown or
   * revoked id costs the same work as a wrong secret. The row is read on every
   * call, so a rotation or revocation takes effect at once. A secret verified
   * before in this process, for the credential as it is now (same generation,
   * same hash), is taken without hashing (see VerifiedSecrets), which spares
   * the scrypt of a store written before sha256; such a row is re-hashed as
   * sha256 at its first good login, so that after the next restart it costs a
   * microsecond too.
   */
  async verify(id: string, secret: string): Promise<StoredCredential | undefined> {
    const row = this.row(id);
    const usable = row && row.revoked_at === null ? row : undefined;
    if (usable && this.verified.has(this.remembered(usable), secret)) return toCredential(usable);
    const ok = await verifySecret(secret, usable?.secret_hash ?? DECOY_HASH);
    if (!ok || !usable) return undefined;
    // The row may have changed while scrypt ran (a rotation, a revocation): answer with what is true now.
    let now = this.row(id);
    if (!now || now.revoked_at !== null || now.secret_hash !== usable.secret_hash) return undefined;
    if (schemeOf(now.secret_hash) === 'scrypt' && isIssuedSecret(secret)) now = this.rehash(now, secret);
    this.verified.remember(this.remembered(now), secret);
    return toCredential(now);
  }

  /**
   * An issued secret's scrypt hash replaced by its sha256 one, the generation
   * kept (no session is ended). Only if the row is still what was verified: a
   * rotation meanwhile wins. A store that cannot be written now (busy, read
   * only) keeps the scrypt hash, which still verifies: tried again next time.
   */
  private rehash(row: Row, secret: string): Row {
    const hash = hashIssuedSecret(secret);
    try {
      const changed = this.sql('UPDATE credential SET secret_hash = ? WHERE id = ? AND secret_hash = ? AND generation = ? AND revoked_at IS NULL').run(hash, row.id, row.secret_hash, row.generation).changes;
      return changed === 1 ? { ...row, secret_hash: hash } : row;
    } catch {
      return row;
    }
  }

  /** Every row as stored (hashes included), for the brokers of a cluster to replicate. */
  rows(): CredentialRow[] {
    return this.sql('SELECT * FROM credential').all() as Row[];
  }

  /** One row as stored, for the brokers of a cluster to replicate. */
  rawRow(id: string): CredentialRow | undefined {
    return this.row(id);
  }

  /**
   * Takes in another broker's copy of a credential (mergeCredentialRows):
   * returns the row as it now is here, and whether that changed anything a
   * login or a session depends on. Written by this connection, so it does not
   * move `dataVersion` (which tells the broker of changes made by others).
   */
  mergeRow(theirs: CredentialRow): { row: CredentialRow; changed: boolean } {
    const mine = this.row(theirs.id);
    const row = mine ? mergeCredentialRows(mine, theirs) : theirs;
    if (mine && sameCredentialRow(mine, row)) return { row: mine, changed: false };
    try {
      this.sql(
        'INSERT OR REPLACE INTO credential (id, role, site, gateway, device, district, topic, prefix, sites, secret_hash, generation, created_at, rotated_at, revoked_at) VALUES (@id, @role, @site, @gateway, @device, @district, @topic, @prefix, @sites, @secret_hash, @generation, @created_at, @rotated_at, @revoked_at)',
      ).run({
        id: row.id, role: row.role, site: row.site, gateway: row.gateway, device: row.device, district: row.district, topic: row.topic, prefix: row.prefix, sites: row.sites,
        secret_hash: row.secret_hash, generation: row.generation, created_at: row.created_at, rotated_at: row.rotated_at, revoked_at: row.revoked_at,
      });
    } catch (err) {
      throw this.storeError('write', err);
    }
    if (row.revoked_at !== null) this.verified.forget(row.id);
    return { row, changed: true };
  }

  /**
   * Changes whenever another connection (the `cosafe credentials` command) has
   * committed to the file: the hub polls it to notice revocations and rotations.
   */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  private validate(input: Identity): { identity: Identity } | { problems: string[] } {
    const parsed = Identity.safeParse(input);
    const id = IdentityId.safeParse(input.id);
    const problems = [
      ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'identity'}: ${i.message}`)),
      ...(id.success ? [] : id.error.issues.map((i) => `id: ${i.message}`)),
    ];
    if (input.role === 'resident') problems.push('role: residents are anonymous; no credential is issued for them');
    return problems.length || !parsed.success ? { problems } : { identity: parsed.data };
  }

  /** A site has one district: a gateway credential naming another (in the store, or earlier in this import) is refused. */
  private districtConflict(identity: Identity, pending: ReadonlyMap<string, string>): string | undefined {
    if (identity.role !== 'gateway' || !identity.district) return undefined;
    const other = pending.get(identity.site) ?? this.siteDistrict(identity.site);
    return other && other !== identity.district
      ? `site "${identity.site}" is already in district "${other}"; a site has one district (revoke its gateway credentials first to move it)`
      : undefined;
  }

  /** Every topic and prefix an active credential owns. */
  private activeClaims(): Claim[] {
    return (this.sql('SELECT id, topic, prefix FROM credential WHERE (topic IS NOT NULL OR prefix IS NOT NULL) AND revoked_at IS NULL').all() as { id: string; topic: string | null; prefix: string | null }[]).map(
      (r) => ({ id: r.id, ...(r.topic !== null ? { topic: r.topic } : {}), ...(r.prefix !== null ? { prefix: r.prefix } : {}) }),
    );
  }

  private remembered(row: Row) {
    return { store: this.path, id: row.id, generation: row.generation, hash: row.secret_hash };
  }

  private active(id: string): Row {
    const row = this.row(id);
    if (!row || row.revoked_at !== null) throw this.unknown(id, row !== undefined);
    return row;
  }

  private row(id: string): Row | undefined {
    try {
      return this.sql('SELECT * FROM credential WHERE id = ?').get(id) as Row | undefined;
    } catch (err) {
      throw this.storeError('read', err);
    }
  }

  private unknown(id: string, revoked = false): CosafeError {
    return new CosafeError(
      'COSAFE_ERR_CREDENTIALS_UNKNOWN',
      revoked ? `identity "${id}" is revoked` : `no identity "${id}" in ${this.path}; see \`cosafe credentials list\``,
    );
  }

  private storeError(what: 'read' | 'write', err: unknown): CosafeError {
    return new CosafeError('COSAFE_ERR_CREDENTIALS_STORE', `cannot ${what} the credential store ${this.path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Two copies of one credential made one, the same whichever is merged into
 * which (so that every broker of a cluster ends with the same row): a
 * revocation is final and the earliest one stands; otherwise the higher
 * generation (the later rotation) wins, with its secret; two copies of one
 * generation with different hashes (one id issued on two brokers before they
 * met) are settled by the hash, arbitrarily but alike everywhere.
 */
export function mergeCredentialRows(a: CredentialRow, b: CredentialRow): CredentialRow {
  const base = a.generation !== b.generation ? (a.generation > b.generation ? a : b) : a.secret_hash >= b.secret_hash ? a : b;
  const revoked = [a.revoked_at, b.revoked_at].filter((t): t is number => t !== null);
  return { ...base, revoked_at: revoked.length ? Math.min(...revoked) : null };
}

/** Whether two copies grant the same: same secret, generation and revocation. */
export function sameCredentialRow(a: CredentialRow, b: CredentialRow): boolean {
  return a.secret_hash === b.secret_hash && a.generation === b.generation && a.revoked_at === b.revoked_at;
}

interface Claim {
  id: string;
  topic?: string;
  prefix?: string;
}

function claimOf(identity: Identity): Omit<Claim, 'id'> | undefined {
  if (identity.role === 'device' && identity.topic !== undefined) return { topic: identity.topic };
  if (identity.role === 'bridge') return { prefix: identity.prefix };
  return undefined;
}

/** One owner per topic and per prefix, and no overlap between them: otherwise another site's gateway could read this one's devices. */
function claimConflict(identity: Identity, claims: readonly Claim[]): string | undefined {
  const mine = claimOf(identity);
  if (!mine) return undefined;
  const claim = mine.prefix ?? mine.topic!;
  const bridge = identity.role === 'bridge';
  for (const other of claims) {
    const clash =
      other.topic !== undefined && (bridge ? underPrefix(other.topic, claim) : other.topic === claim) ? `topic "${other.topic}"`
      : other.prefix !== undefined && (underPrefix(claim, other.prefix) || (bridge && underPrefix(other.prefix, claim))) ? `prefix "${other.prefix}/#"`
      : undefined;
    if (clash) return `${bridge ? `prefix "${claim}/#"` : `topic "${claim}"`} overlaps ${clash}, which belongs to "${other.id}"; one topic or prefix has one owner`;
  }
  return undefined;
}

/** The credential a row grants; throws on a row that is not a valid identity (one from another broker is checked so before it is taken in). */
export function toCredential(row: Row): StoredCredential {
  const scope = Object.fromEntries(
    Object.entries({ site: row.site, gateway: row.gateway, device: row.device, district: row.district, topic: row.topic, prefix: row.prefix, sites: row.sites === null ? null : (JSON.parse(row.sites) as string[]) }).filter(([, v]) => v !== null),
  );
  return {
    identity: Object.freeze(Identity.parse({ id: row.id, role: row.role, ...scope })),
    generation: row.generation,
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
    revokedAt: row.revoked_at,
  };
}
