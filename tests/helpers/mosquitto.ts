import { requireBinary, run, type RunResult } from './processes.js';

/**
 * Debian's mosquitto-clients: an MQTT client nobody here wrote. A missing
 * binary fails the test with the package to install.
 */
export function mosquittoPub(args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return run(requireBinary('mosquitto_pub', 'mosquitto-clients'), ['-h', '127.0.0.1', ...args], { timeoutMs });
}

export function mosquittoSub(args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return run(requireBinary('mosquitto_sub', 'mosquitto-clients'), ['-h', '127.0.0.1', ...args], { timeoutMs });
}

/** `-u <username> -P <password>` */
export function login(c: { username: string; password: string }): string[] {
  return ['-u', c.username, '-P', c.password];
}
