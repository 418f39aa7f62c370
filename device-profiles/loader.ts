import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CosafeError } from '../core/errors.js';
import { loadYamlFile } from '../core/yaml-file.js';
import { Profile, type ProfileOf, type Transport } from './schema.js';

export const BUILTIN_PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'builtin');

/** Loads every `*.yaml` profile of a directory; all errors of all files at once. */
export function loadProfileDir(dir: string): Map<string, Profile> {
  const profiles = new Map<string, Profile>();
  const details: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_PROFILE_INVALID', `cannot read the profile directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const name of names.filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const file = join(dir, name);
    try {
      const p = loadYamlFile(file, Profile, { read: 'COSAFE_ERR_PROFILE_INVALID', invalid: 'COSAFE_ERR_PROFILE_INVALID' });
      if (profiles.has(p.id)) details.push(`${file}:1 id: profile "${p.id}" is defined twice`);
      profiles.set(p.id, p);
    } catch (err) {
      if (err instanceof CosafeError) details.push(...(err.details.length ? err.details : [err.message]));
      else throw err;
    }
  }
  if (details.length) throw new CosafeError('COSAFE_ERR_PROFILE_INVALID', `invalid profiles in ${dir}`, { details });
  return profiles;
}

export function loadBuiltinProfiles(): Map<string, Profile> {
  return loadProfileDir(BUILTIN_PROFILE_DIR);
}

/** A profile that must exist and speak `transport` (tests, tools). */
export function requireProfile<T extends Transport>(profiles: ReadonlyMap<string, Profile>, id: string, transport: T): ProfileOf<T> {
  const p = profiles.get(id);
  if (!p) throw new CosafeError('COSAFE_ERR_PROFILE_UNKNOWN', `no profile "${id}"`);
  if (p.transport !== transport) throw new CosafeError('COSAFE_ERR_PROFILE_INVALID', `profile "${id}" speaks ${p.transport}, not ${transport}`);
  return p as ProfileOf<T>;
}
