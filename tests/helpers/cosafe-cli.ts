import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readOperatorToken } from '../../cli/operator-token.js';
import { spawnLogged, type Spawned } from './processes.js';

export const COSAFE_BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'cosafe.js');

/** Runs `cosafe ...` to completion, as a user would from a shell; `env` adds to the environment. */
export function runCosafe(args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [COSAFE_BIN, ...args], { timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1', ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `cosafe ...` (demo, run) in the background; `env` adds to the environment (e.g. COSAFE_CRASH_AT). */
export function startCosafe(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  return spawnLogged(process.execPath, [COSAFE_BIN, ...args, '--log-format', 'json'], { env: { NO_COLOR: '1', ...env } });
}

/** Issues a credential with the CLI, as the hub's operator would, and returns the MQTT login. */
export async function addCredential(configFile: string, ...args: string[]): Promise<{ username: string; password: string }> {
  const r = await runCosafe(['credentials', 'add', ...args, '--config', configFile, '--json']);
  if (r.code !== 0) throw new Error(`cosafe credentials add failed: ${r.stderr}`);
  const { username, secret } = JSON.parse(r.stdout) as { username: string; secret: string };
  return { username, password: secret };
}

/**
 * The request options of the hub's operator, as `cosafe status` sends them: the
 * operator token the running hub wrote to its data directory (read at each
 * call: a restarted hub writes a new one). The hub's /metrics, readings and
 * gateways are not for anyone who reaches the port.
 */
export function asOperator(dataDir: string): { headers: Record<string, string> } {
  const token = readOperatorToken(dataDir);
  return { headers: token ? { authorization: `Bearer ${token}` } : {} };
}
