import { CosafeError } from '../core/errors.js';

/**
 * GET a path of the hub HTTP API as JSON, for the commands that read from a
 * running hub. An unreachable hub and a refused query are told apart, with
 * what to do about each.
 */
export async function getFromHub<T>(api: string, path: string): Promise<T> {
  const base = api.replace(/\/$/, '');
  let res: Response;
  let body: T & { details?: string[] };
  try {
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
    body = (await res.json()) as typeof body;
  } catch (err) {
    throw new CosafeError('COSAFE_ERR_HUB_UNREACHABLE', `cannot reach the hub at ${base}: ${(err as Error).message}. Is "cosafe demo" (or cloud-sync) running? Use --api to point elsewhere.`, { cause: err });
  }
  if (!res.ok) throw new CosafeError('COSAFE_ERR_CLI_USAGE', `the hub answered HTTP ${res.status}`, { details: body.details ?? [] });
  return body;
}
