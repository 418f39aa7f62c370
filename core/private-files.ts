import { chmodSync, closeSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CosafeError } from './errors.js';

/**
 * The data directory holds credential hashes, alarm payloads, the OPC-UA
 * private key and the readings of every site: only the user cosafe runs as
 * may read it. Directories are 0700 and files 0600, set explicitly, so that
 * neither the usual umask (022: world-readable) nor umask 000 (world-writable)
 * decides. Every file cosafe creates in its data directory goes through here.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** S_ISVTX: a directory where anyone may create files, such as /tmp. */
const STICKY = 0o1000;

/**
 * Makes `dir` exist with mode 0700 (and any parent it creates), and tightens an
 * existing one (a data directory made by an older version, or by hand). A
 * directory cosafe cannot make private is refused rather than used: one shared
 * with others (the sticky bit, as on /tmp), or one that belongs to another user.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const st = statSync(dir);
  if ((st.mode & 0o7777) === PRIVATE_DIR_MODE) return;
  if (st.mode & STICKY) {
    throw new CosafeError('COSAFE_ERR_DATADIR_UNSAFE', `${dir} is a shared directory (sticky bit, as /tmp): give cosafe a directory of its own as dataDir`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    throw new CosafeError('COSAFE_ERR_DATADIR_UNSAFE', `${dir} belongs to another user (uid ${st.uid}), so cosafe cannot make it private: give it a directory of its own as dataDir`);
  }
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Opens (creating if needed) a file with mode 0600 in a private directory, and
 * sets 0600 on it even when it existed with another mode. Returns the fd.
 */
export function openPrivateFile(path: string, flags: string): number {
  ensurePrivateDir(dirname(path));
  const fd = openSync(path, flags, PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Prepares a SQLite database file before SQLite opens it: created 0600 if it
 * does not exist, tightened if it does, with its -wal, -shm and -journal files.
 * SQLite gives the files it creates next to a database the mode of the
 * database file, so those are 0600 from then on too.
 */
export function ensurePrivateDatabase(path: string): void {
  closeSync(openPrivateFile(path, 'a'));
  for (const suffix of ['-wal', '-shm', '-journal']) chmodIfExists(`${path}${suffix}`, PRIVATE_FILE_MODE);
}

/**
 * Makes a tree a library writes on its own (the OPC-UA certificate store)
 * private: every directory 0700, every file 0600. Symbolic links are left
 * alone (their mode means nothing; what they point to is not ours to change).
 */
export function makeTreePrivate(root: string): void {
  ensurePrivateDir(root);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) makeTreePrivate(path);
    else if (entry.isFile()) chmodIfExists(path, PRIVATE_FILE_MODE);
  }
}

function chmodIfExists(path: string, mode: number): void {
  try {
    if ((lstatSync(path).mode & 0o7777) !== mode) chmodSync(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
