import { readFileSync, statSync } from 'node:fs';
import { loadConfigFile, type Config } from '../core/config.js';
import { CosafeError } from '../core/errors.js';
import { formatPath, lineOfPath } from '../core/yaml-file.js';
import type { Profile } from '../device-profiles/schema.js';
import { bindDevices, type DeviceBinding } from '../edge/device-binding.js';
import { loadProfiles } from './compose.js';

export interface Site {
  config: Config;
  profiles: Map<string, Profile>;
  /** Every device the gateway will read, a range's each on its own. */
  bindings: DeviceBinding[];
  /** `file:line path` of a config field, for reports about the valid file. */
  place: (path: (string | number)[]) => string;
}

/**
 * A config file with the profiles its devices name, checked as the gateway
 * will use them, before anything starts: every problem at once, each as
 * `file:line path: message` (check-config, run, and every reload).
 */
export function loadSite(file: string): Site {
  const config = loadConfigFile(file);
  const text = readFileSync(file, 'utf8');
  const place = (path: (string | number)[]) => `${file}:${lineOfPath(text, path)} ${formatPath(path)}`;
  const { profileDir } = config.gateway;
  if (profileDir !== undefined && !isDirectory(profileDir)) {
    throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${file}: the profile directory does not exist`, {
      details: [`${place(['gateway', 'profileDir'])}: no directory ${profileDir} (create it, or remove profileDir to use the built-in profiles only)`],
    });
  }
  const profiles = loadProfiles(config);
  const bindings = bindDevices(config.gateway, profiles, place);
  return { config, profiles, bindings, place };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
