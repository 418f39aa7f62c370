import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock, type Clock } from '../../core/clock.js';
import { CosafeError } from '../../core/errors.js';
import { ensurePrivateDatabase } from '../../core/private-files.js';
import { Identity, IdentityId, underPrefix } from './identity.js';
import { DECOY_HASH, hashSecret, newSecret, verifySecret } from './secret-hash.js';

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

interface Row {
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
 * Secrets are never stored, only their scrypt hashes; a secret is shown once,
 * when it is made. Revoked credentials stay as rows (who had access, and until
 * when), and their ids are never reused.
 */
export class CredentialStore {
  // The broker looks credentials up on every login and every store change: statements are prepared once.
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly clock: Clock,
  ) {}

  static open(path: string, clock: Clock = systemClock): CredentialStore {
    try {
      // Only its owner may read the hashes: 0600 before SQLite writes the first byte.
      ensurePrivateDatabase(path);
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      // The CLI and the hub write and read the file at the same time.
      db.pragma('busy_timeout = 5000');
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
      return new CredentialStore(db, path, clock);
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_CREDENTIALS_STORE', `cannot open the credential store ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Issues a credential; the secret is returned here and never again. */
  async add(input: Identity): Promise<{ credential: StoredCredential; secret: string }> {
    const identity = this.validate(input);
    if (this.row(identity.id)) {
      throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', `identity "${identity.id}" already exists (ids of revoked credentials are not reused); choose another --id`);
    }
    if (identity.role === 'gateway' && identity.district) {
      const other = this.siteDistrict(identity.site);
      if (other && other !== identity.district) {
        throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', `site "${identity.site}" is already in district "${other}"; a site has one district (revoke its gateway credentials first to move it)`);
      }
    }
    // One owner per topic and per prefix, and no overlap between them: otherwise another site's gateway could read this one's devices.
    const claim = identity.role === 'device' ? identity.topic : identity.role === 'bridge' ? identity.prefix : undefined;
    if (claim !== undefined) {
      const claims = this.sql("SELECT id, topic, prefix FROM credential WHERE (topic IS NOT NULL OR prefix IS NOT NULL) AND revoked_at IS NULL").all() as { id: string; topic: string | null; prefix: string | null }[];
      for (const other of claims) {
        const clash =
          other.topic !== null && (identity.role === 'bridge' ? underPrefix(other.topic, claim) : other.topic === claim) ? `topic "${other.topic}"`
          : other.prefix !== null && (underPrefix(claim, other.prefix) || (identity.role === 'bridge' && underPrefix(other.prefix, claim))) ? `prefix "${other.prefix}/#"`
          : undefined;
        if (clash) {
          throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', `${identity.role === 'bridge' ? `prefix "${claim}/#"` : `topic "${claim}"`} overlaps ${clash}, which belongs to "${other.id}"; one topic or prefix has one owner`);
        }
      }
    }
    const secret = newSecret();
    const hash = await hashSecret(secret);
    const now = this.clock.now();
    const scope = identity as { site?: string; gateway?: string; device?: string; district?: string; topic?: string; prefix?: string; sites?: string[] };
    try {
      this.sql('INSERT INTO credential (id, role, site, gateway, device, district, topic, prefix, sites, secret_hash, generation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)')
        .run(identity.id, identity.role, scope.site ?? null, scope.gateway ?? null, scope.device ?? null, scope.district ?? null, scope.topic ?? null, scope.prefix ?? null, scope.sites ? JSON.stringify(scope.sites) : null, hash, now);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new CosafeError('COSAFE_ERR_CREDENTIALS_CONFLICT', `identity "${identity.id}" already exists`, { cause: err });
      }
      throw this.storeError('write', err);
    }
    return { credential: this.find(identity.id)!, secret };
  }

  /** Replaces the secret: the old one stops working at once, and sessions opened with it are ended by the hub. */
  async rotate(id: string): Promise<{ credential: StoredCredential; secret: string }> {
    this.active(id);
    const secret = newSecret();
    const hash = await hashSecret(secret);
    const changed = this.sql('UPDATE credential SET secret_hash = ?, generation = generation + 1, rotated_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(hash, this.clock.now(), id).changes;
    if (changed !== 1) throw this.unknown(id);
    return { credential: this.find(id)!, secret };
  }

  /** Ends a credential for good; the hub disconnects its sessions within a second. */
  revoke(id: string): StoredCredential {
    this.active(id);
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
   * revoked id costs the same scrypt work as a wrong secret.
   */
  async verify(id: string, secret: string): Promise<StoredCredential | undefined> {
    const row = this.row(id);
    const usable = row && row.revoked_at === null ? row : undefined;
    const ok = await verifySecret(secret, usable?.secret_hash ?? DECOY_HASH);
    if (!ok || !usable) return undefined;
    // The row may have changed while scrypt ran (a rotation, a revocation): answer with what is true now.
    const now = this.row(id);
    return now && now.revoked_at === null && now.secret_hash === usable.secret_hash ? toCredential(now) : undefined;
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

  private validate(input: Identity): Identity {
    const parsed = Identity.safeParse(input);
    const id = IdentityId.safeParse(input.id);
    const problems = [
      ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'identity'}: ${i.message}`)),
      ...(id.success ? [] : id.error.issues.map((i) => `id: ${i.message}`)),
    ];
    if (input.role === 'resident') problems.push('role: residents are anonymous; no credential is issued for them');
    if (problems.length || !parsed.success) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `invalid identity "${input.id}"`, { details: problems });
    return parsed.data;
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

function toCredential(row: Row): StoredCredential {
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
