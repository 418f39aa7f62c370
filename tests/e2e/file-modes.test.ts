import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COSAFE_BIN } from '../helpers/cosafe-cli.js';
import { freePort, spawnLogged, waitUntil } from '../helpers/processes.js';

/**
 * What another user of the machine can see of a running hub's data directory:
 * nothing. `cosafe demo` (broker, gateway with MQTT, serial, Modbus and OPC-UA
 * devices, cloud-sync, webhooks) runs under the umask given, and every
 * directory it made is 0700 and every file 0600: stores with alarm payloads
 * and credential hashes, their WAL files, the condition state (in the gateway's event outbox), the OPC-UA
 * certificate store with its private key.
 */
const root = mkdtempSync(join(tmpdir(), 'cosafe-modes-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every entry under `dir` as `path mode` (octal), directories with a trailing "/". */
function modes(dir: string): string[] {
  const out = [`./ ${(statSync(dir).mode & 0o7777).toString(8)}`];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isSymbolicLink()) continue;
    const path = join(e.parentPath, e.name);
    out.push(`${path.slice(dir.length + 1)}${e.isDirectory() ? '/' : ''} ${(statSync(path).mode & 0o7777).toString(8)}`);
  }
  return out.sort();
}

/** Entries that are not a 0700 directory or a 0600 file. */
const notPrivate = (entries: string[]) => entries.filter((e) => !(/\/ 700$/.test(e) || /[^/] 600$/.test(e)));

async function runDemo(umask: string, dataDir: string): Promise<{ running: string[]; stopped: string[] }> {
  const [port, httpPort] = [await freePort(), await freePort()];
  const args = ['demo', '--port', String(port), '--http-port', String(httpPort), '--data-dir', dataDir, '--interval', '200', '--alarm-every', '2', '--log-format', 'json'];
  // A shell sets the umask, then becomes cosafe (exec), so signals reach it directly.
  const demo = spawnLogged('/bin/sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, COSAFE_BIN, ...args], { env: { NO_COLOR: '1' } });
  try {
    await waitUntil('the demo to deliver a fire alarm', () => demo.output().includes('FIRE DEPARTMENT central received Alert'), 60_000, 100);
    await waitUntil('the OPC-UA device to report', () => demo.output().includes('OPC-UA connected; subscription active'), 60_000, 100);
    const running = modes(dataDir);
    expect(await demo.stop('SIGINT')).toBe(0);
    return { running, stopped: modes(dataDir) };
  } catch (err) {
    await demo.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- cosafe output ---\n${demo.output().slice(-4000)}`);
  }
}

// Each test runs a whole demo: minutes on a loaded 2-core machine.
describe('the data directory is private to the user cosafe runs as', () => {
  it('with umask 000, in a data directory cosafe creates', async () => {
    const dataDir = join(root, 'new', 'state');
    const { running, stopped } = await runDemo('000', dataDir);
    for (const name of ['./ 700', 'broker.db 600', 'dispatch.db 600', 'outbox-gw-1.db 600', 'opcua-pki/ 700']) expect(running).toContain(name);
    expect(running.some((e) => e.endsWith('-wal 600'))).toBe(true);
    expect(running.some((e) => e.startsWith('opcua-pki/') && e.endsWith(' 600'))).toBe(true);
    expect(notPrivate(running)).toEqual([]);
    expect(notPrivate(stopped)).toEqual([]);
  }, 180_000);

  it('with umask 022, in a data directory an older version left readable by everyone', async () => {
    const dataDir = join(root, 'old');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'readings.db'), '');
    chmodSync(join(dataDir, 'readings.db'), 0o644);
    const { running, stopped } = await runDemo('022', dataDir);
    expect(running).toContain('./ 700');
    expect(running).toContain('readings.db 600');
    expect(notPrivate(running)).toEqual([]);
    expect(notPrivate(stopped)).toEqual([]);
  }, 180_000);
});
