import type Database from 'better-sqlite3';
import { join } from 'node:path';
import { CosafeError } from '../../core/errors.js';
import { openSharedDatabase } from '../../core/sqlite.js';
import { Site, siteProblems, type SiteInput } from './site.js';

/** The registry's file in the data directory; `cosafe sites` and the running hub open the same file. */
export function siteStorePath(dataDir: string): string {
  return join(dataDir, 'sites.db');
}

/**
 * The site registry on disk (SQLite, WAL, owner-only): the operator's CLI
 * writes it, the running hub reads it and notices changes through SQLite's
 * `data_version` without a restart. Every record is validated on the way in
 * and again on the way out, so a hand-edited file cannot feed the dispatch a
 * malformed site.
 */
export class SiteStore {
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  static open(path: string): SiteStore {
    try {
      const db = openSharedDatabase(path);
      db.exec(`
        CREATE TABLE IF NOT EXISTS site (
          id TEXT PRIMARY KEY,
          district TEXT NOT NULL,
          record TEXT NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS site_district ON site (district);
      `);
      return new SiteStore(db, path);
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_SITES_STORE', `cannot open the site registry ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Validates a site; every problem at once. */
  static parse(input: unknown, where = 'site'): Site {
    const r = Site.safeParse(input);
    if (!r.success) throw new CosafeError('COSAFE_ERR_SITE_INVALID', `${where} is invalid`, { details: siteProblems(r.error).map((p) => `${where} ${p}`) });
    return r.data;
  }

  /** Registers a site; `replace` overwrites one with the same id. */
  put(input: SiteInput, options: { replace?: boolean; now?: number } = {}): Site {
    const site = SiteStore.parse(input);
    this.write(() => {
      if (!options.replace && this.get(site.id)) {
        throw new CosafeError('COSAFE_ERR_SITE_INVALID', `site "${site.id}" is already registered (use --replace to overwrite it)`);
      }
      this.sql('INSERT OR REPLACE INTO site (id, district, record, updated_at) VALUES (?, ?, ?, ?)').run(site.id, site.district, JSON.stringify(site), options.now ?? Date.now());
    });
    return site;
  }

  /** Writes many sites in one transaction: all or none. */
  putAll(sites: readonly Site[], now = Date.now()): void {
    const insert = this.sql('INSERT OR REPLACE INTO site (id, district, record, updated_at) VALUES (?, ?, ?, ?)');
    this.write(() => this.db.transaction(() => sites.forEach((s) => insert.run(s.id, s.district, JSON.stringify(s), now)))());
  }

  remove(id: string): Site {
    const site = this.get(id);
    if (!site) throw unknownSite(id, this.path);
    this.write(() => this.sql('DELETE FROM site WHERE id = ?').run(id));
    return site;
  }

  get(id: string): Site | undefined {
    const row = this.read(() => this.sql('SELECT record FROM site WHERE id = ?').get(id) as { record: string } | undefined);
    return row && SiteStore.parse(JSON.parse(row.record), `site "${id}" in ${this.path}`);
  }

  list(filter: { district?: string } = {}): Site[] {
    const rows = this.read(() =>
      (filter.district
        ? this.sql('SELECT id, record FROM site WHERE district = ? ORDER BY id').all(filter.district)
        : this.sql('SELECT id, record FROM site ORDER BY id').all()) as { id: string; record: string }[],
    );
    return rows.map((r) => SiteStore.parse(JSON.parse(r.record), `site "${r.id}" in ${this.path}`));
  }

  /** Changes whenever another connection (the `cosafe sites` command) has committed to the file. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  private read<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new CosafeError('COSAFE_ERR_SITES_STORE', `cannot read the site registry ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  private write(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (err instanceof CosafeError) throw err;
      throw new CosafeError('COSAFE_ERR_SITES_STORE', `cannot write the site registry ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }
}

export function unknownSite(id: string, path: string): CosafeError {
  return new CosafeError('COSAFE_ERR_SITE_UNKNOWN', `no site "${id}" in ${path}; see \`cosafe sites list\``);
}
