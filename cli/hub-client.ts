import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile } from '../core/config.js';
import { CosafeError } from '../core/errors.js';
import { readOperatorToken } from './operator-token.js';

export interface HubClientOptions {
  api: string;
  config?: string;
  dataDir?: string;
}

/** The options of the commands that read from a running hub: where it is, and where its data directory is (for its operator token). */
export function hubClientOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'hub HTTP API', 'http://127.0.0.1:8080')
    .option('-c, --config <file>', "the hub's config file: its dataDir holds the operator token of the running hub")
    .option('--data-dir <dir>', "the hub's data directory (default .cosafe)");
}

/**
 * How the command logs in: a credential named by COSAFE_API_USER and
 * COSAFE_API_SECRET (any role that may read what is asked, e.g. from another
 * machine), else the running hub's operator token from its data directory.
 */
function authorization(o: HubClientOptions): string | undefined {
  const user = process.env.COSAFE_API_USER;
  const secret = process.env.COSAFE_API_SECRET;
  if (user && secret) return `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
  if (o.config && o.dataDir) throw new CosafeError('COSAFE_ERR_CLI_USAGE', '--config and --data-dir both name the data directory: give one');
  const dataDir = o.config ? loadConfigFile(o.config).dataDir : resolve(o.dataDir ?? '.cosafe');
  const token = readOperatorToken(dataDir);
  return token ? `Bearer ${token}` : undefined;
}

/**
 * GET a path of the hub HTTP API as JSON, for the commands that read from a
 * running hub. An unreachable hub, a refused login and a refused query are
 * told apart, with what to do about each.
 */
export async function getFromHub<T>(o: HubClientOptions, path: string): Promise<T> {
  const base = o.api.replace(/\/$/, '');
  const auth = authorization(o);
  let res: Response;
  let body: T & { details?: string[] };
  try {
    res = await fetch(`${base}${path}`, { headers: auth ? { authorization: auth } : {}, signal: AbortSignal.timeout(10_000) });
    body = (await res.json()) as typeof body;
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_HUB_UNREACHABLE', `cannot reach the hub at ${base}: ${(err as Error).message}. Is "cosafe demo" (or cloud-sync) running? Use --api to point elsewhere.`, { cause: err });
  }
  if (res.status === 401 || res.status === 403) {
    const how = 'run this on the hub\'s machine with its data directory (--config or --data-dir), or set COSAFE_API_USER and COSAFE_API_SECRET to a credential that may read it';
    const code = res.status === 401 ? 'COSAFE_ERR_HTTP_UNAUTHENTICATED' : 'COSAFE_ERR_HTTP_FORBIDDEN';
    throw new CosafeError(code, `the hub answered HTTP ${res.status}: ${res.status === 401 ? 'not logged in' : 'this credential may not read this'}; ${how}`);
  }
  if (!res.ok) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `the hub answered HTTP ${res.status}`, { details: body.details ?? [] });
  return body;
}
