import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Clock } from '../../core/clock.js';
import { openDurableDatabase } from '../../core/sqlite.js';
import type { Principal } from './permissions.js';

export interface SessionLimits {
  /** A session not used for this long ends (OWASP ASVS 3.3.2: an idle timeout). */
  idleMs: number;
  /** A session ends this long after the login, used or not (ASVS 3.3.4: an absolute lifetime). */
  maxMs: number;
}

export interface Session {
  principal: Principal;
  /** The credential's generation at the login: a rotation ends the session, as it ends the broker's. */
  generation: number;
  /** The synchronizer token every state-changing request of this session must carry (OWASP CSRF cheat sheet). */
  csrf: string;
  createdAt: number;
  seenAt: number;
  expiresAt: number;
}

interface Row {
  principal: string;
  generation: number;
  csrf: string;
  created_at: number;
  seen_at: number;
}

/** A session's last use is written at most this often, so a page polling every second does not write every second. */
const TOUCH_EVERY_MS = 60_000;

/**
 * Browser sessions of the hub's pages, in `dataDir/sessions.db`, so a hub
 * restart does not log a dispatcher out in the middle of a shift. The token is
 * 256 random bits, given to the browser once (the cookie) and stored only as
 * its SHA-256: whoever reads the file cannot use the sessions in it. Each login
 * makes a new token (no session fixation); logout, expiry, revocation or
 * rotation of the credential delete it.
 */
export class SessionStore {
  private readonly s: ReturnType<SessionStore['prepare']>;

  private constructor(
    private readonly db: Database.Database,
    private readonly clock: Clock,
    readonly limits: SessionLimits,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS session (
        token_hash TEXT PRIMARY KEY, identity TEXT NOT NULL, principal TEXT NOT NULL, generation INTEGER NOT NULL,
        csrf TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, address TEXT NOT NULL, agent TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS session_identity ON session (identity);
    `);
    this.s = this.prepare(db);
  }

  static open(path: string, clock: Clock, limits: SessionLimits): SessionStore {
    return new SessionStore(openDurableDatabase(path), clock, limits);
  }

  /** A new session for a verified credential; the token is returned here and never again. */
  create(principal: Principal, generation: number, meta: { address: string; agent: string }): { token: string; session: Session } {
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    this.s.insert.run(hash(token), principal.id, JSON.stringify(principal), generation, csrf, now, now, meta.address.slice(0, 64), meta.agent.slice(0, 200));
    return { token, session: this.view({ principal: JSON.stringify(principal), generation, csrf, created_at: now, seen_at: now }) };
  }

  /** The live session of `token`, its last use brought up to now; undefined (and deleted) once it has expired. */
  get(token: string): Session | undefined {
    const key = hash(token);
    const row = this.s.get.get(key) as Row | undefined;
    if (!row) return undefined;
    const now = this.clock.now();
    const session = this.view(row);
    if (now >= session.expiresAt) {
      this.s.delete.run(key);
      return undefined;
    }
    if (now - row.seen_at >= TOUCH_EVERY_MS) {
      this.s.touch.run(now, key);
      return this.view({ ...row, seen_at: now });
    }
    return session;
  }

  delete(token: string): void {
    this.s.delete.run(hash(token));
  }

  /** Ends every session of an identity (its credential was revoked or rotated). */
  deleteIdentity(id: string): number {
    return this.s.deleteIdentity.run(id).changes;
  }

  /** Deletes expired sessions; returns how many are left. */
  sweep(): number {
    const now = this.clock.now();
    this.s.sweep.run(now - this.limits.idleMs, now - this.limits.maxMs);
    return this.count();
  }

  count(): number {
    return (this.s.count.get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private view(row: Row): Session {
    return {
      principal: JSON.parse(row.principal) as Principal,
      generation: row.generation,
      csrf: row.csrf,
      createdAt: row.created_at,
      seenAt: row.seen_at,
      expiresAt: Math.min(row.seen_at + this.limits.idleMs, row.created_at + this.limits.maxMs),
    };
  }

  private prepare(db: Database.Database) {
    return {
      insert: db.prepare('INSERT INTO session (token_hash, identity, principal, generation, csrf, created_at, seen_at, address, agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      get: db.prepare('SELECT principal, generation, csrf, created_at, seen_at FROM session WHERE token_hash = ?'),
      touch: db.prepare('UPDATE session SET seen_at = ? WHERE token_hash = ?'),
      delete: db.prepare('DELETE FROM session WHERE token_hash = ?'),
      deleteIdentity: db.prepare('DELETE FROM session WHERE identity = ?'),
      sweep: db.prepare('DELETE FROM session WHERE seen_at <= ? OR created_at <= ?'),
      count: db.prepare('SELECT count(*) AS n FROM session'),
    };
  }
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
