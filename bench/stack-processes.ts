import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CredentialStore, credentialStorePath } from '../broker/auth/credential-store.js';
import type { Identity } from '../broker/auth/identity.js';
import { COSAFE_BIN, startCosafe } from '../tests/helpers/cosafe-cli.js';
import { freePort, spawnLogged, waitUntil, type Spawned } from '../tests/helpers/processes.js';

/**
 * The system under test as a user runs it: `cosafe hub` (broker and
 * cloud-sync) and `cosafe gateway`, each a process of its own, so the hub's
 * memory and event loop are its own and not the bench's. Logins are issued in
 * the hub's credential store beforehand, as `cosafe credentials add` would.
 */
export const SITE = 'bench-site';
export const GATEWAY = 'gw-bench';
export const SMOKE = 'smoke-1';
/** The n-th MQTT device the gateway reads. */
export const DEVICE = (n: number) => `th-${n}`;

export interface Login {
  username: string;
  password: string;
}

export interface StackOptions {
  influxUrl: string;
  database: string;
  fireDepartmentUrl: string;
  fireDepartmentSecret: string;
  /** MQTT devices the gateway reads (besides the smoke detector), `th-<n>`. */
  devices: number;
  /** Identities the bench itself logs in with (publishers, devices, the observer). */
  identities: Identity[];
  /** Where the hub and the gateway write a V8 CPU profile each when they stop (`npm run bench -- --cpu-prof DIR`). */
  cpuProfileDir?: string;
}

/** A process of the stack, with its HTTP address for /metrics and /health. */
export class StackProcess {
  constructor(
    readonly name: string,
    readonly proc: Spawned,
    readonly httpUrl: string,
    /** The hub's /metrics, /health's details and its API need a credential (a monitor's or an admin's); the gateway's status server does not. */
    private readonly authorization?: string,
  ) {}

  get authHeaders(): Record<string, string> {
    return this.authorization ? { authorization: this.authorization } : {};
  }

  get pid(): number {
    return this.proc.child.pid ?? 0;
  }

  /** The process's resident memory now and its peak so far (MiB), from /proc. */
  memory(): { rssMiB: number; peakMiB: number } {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
      return { rssMiB: Math.round(kb('VmRSS') / 1024), peakMiB: Math.round(kb('VmHWM') / 1024) };
    } catch {
      return { rssMiB: 0, peakMiB: 0 };
    }
  }

  /** Every sample of /metrics, summed over labels per metric name. */
  async metrics(): Promise<Record<string, number>> {
    const text = await (await fetch(`${this.httpUrl}/metrics`, { headers: this.authHeaders, signal: AbortSignal.timeout(10_000) })).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^([a-z_:][a-z0-9_:]*)(?:\{[^}]*\})? (\S+)$/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
    return out;
  }

  async health(): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.httpUrl}/health`, { headers: this.authHeaders, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  stop(): Promise<number | null> {
    return this.proc.stop('SIGTERM', 15_000);
  }
}

export class Stack {
  private constructor(
    readonly dir: string,
    readonly brokerUrl: string,
    readonly hub: StackProcess,
    readonly gateway: StackProcess,
    readonly logins: Map<string, Login>,
  ) {}

  static async start(o: StackOptions): Promise<Stack> {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-bench-'));
    const [mqttPort, hubHttp, gwHttp] = [await freePort(), await freePort(), await freePort()];
    const brokerUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const hubDir = join(dir, 'hub');
    // The bench reads the hub's /metrics and gateways as an operator would: with an admin's credential.
    const logins = await issueLogins(hubDir, [GATEWAY_IDENTITY, ADMIN, ...o.identities]);

    const hubFile = join(dir, 'hub.yaml');
    writeFileSync(
      hubFile,
      stringify({
        dataDir: hubDir,
        log: { level: 'warn' },
        broker: {
          host: '127.0.0.1',
          port: mqttPort,
          limits: BENCH_BROKER_LIMITS,
        },
        http: { host: '127.0.0.1', port: hubHttp },
        cloudSync: {
          influx: { url: o.influxUrl, database: o.database },
          fireDepartments: [{ id: 'fd-bench', url: o.fireDepartmentUrl, secret: o.fireDepartmentSecret, classes: ['fire', 'gas', 'co', 'trouble'] }],
        },
      }),
    );
    const gwFile = join(dir, 'gateway.yaml');
    const gwLogin = logins.get(`${SITE}.${GATEWAY}`)!;
    writeFileSync(
      gwFile,
      stringify({
        dataDir: join(dir, 'gateway'),
        log: { level: 'warn' },
        http: { host: '127.0.0.1', port: gwHttp },
        gateway: {
          id: GATEWAY,
          site: SITE,
          brokerUrl,
          credentials: gwLogin,
          devices: [
            { id: SMOKE, profile: 'mqtt-smoke-detector', location: 'bench' },
            ...Array.from({ length: o.devices }, (_, i) => ({ id: DEVICE(i), profile: 'mqtt-temperature-humidity' })),
          ],
        },
      }),
    );
    const cosafe = (args: string[]) => spawnCosafe(args, o.cpuProfileDir);
    const hub = new StackProcess('hub', cosafe(['hub', '--config', hubFile]), `http://127.0.0.1:${hubHttp}`, basicAuth(logins.get(ADMIN.id)!));
    let gateway: StackProcess | undefined;
    try {
      await waitUntil('the hub to answer /health', async () => (await hub.health()).status === 200, 60_000, 200).catch(withOutput(hub));
      gateway = new StackProcess('gateway', cosafe(['gateway', '--config', gwFile]), `http://127.0.0.1:${gwHttp}`);
      await waitForGateway(hub, gateway);
      return new Stack(dir, brokerUrl, hub, gateway, logins);
    } catch (err) {
      await gateway?.stop();
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** One broker: the hub's (LoadTarget). */
  get brokerUrls(): string[] {
    return [this.brokerUrl];
  }

  login(id: string): Login {
    const l = this.logins.get(id);
    if (!l) throw new Error(`no login ${id}`);
    return l;
  }

  async stop(): Promise<void> {
    await this.gateway.stop();
    await this.hub.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A wait's error with the last output of the process it waited on. */
export function withOutput(p: StackProcess) {
  return (err: Error) => {
    throw new Error(`${err.message}\n--- ${p.name} output ---\n${p.proc.output().slice(-4000)}`);
  };
}

/** The gateway the alarm probe's smoke detector reports through, and the bench's operator login for /metrics. */
export const GATEWAY_IDENTITY: Identity = { role: 'gateway', id: `${SITE}.${GATEWAY}`, site: SITE, gateway: GATEWAY };
export const ADMIN: Identity = { role: 'admin', id: 'bench-admin' };

/** The bench's own clients: a thousand devices from one address, publishers faster than a real gateway. */
export const BENCH_BROKER_LIMITS = { publishesPerSecond: 1_000_000, publishBurst: 1_000_000, maxConnectionsPerIdentity: 5000, connectAttemptsPerMinute: 100_000, maxConnections: 20_000 };

/**
 * Issues logins into the credential store of a data directory before its
 * process starts, as `cosafe credentials import` would: one transaction, the
 * hashes in parallel, so a thousand device logins take seconds.
 */
export async function issueLogins(dataDir: string, identities: Identity[]): Promise<Map<string, Login>> {
  const store = CredentialStore.open(credentialStorePath(dataDir));
  try {
    const issued = await store.addMany(identities);
    return new Map(identities.map((identity, i) => [identity.id, { username: identity.id, password: issued[i]!.secret }]));
  } finally {
    store.close();
  }
}

export const basicAuth = (l: Login) => `Basic ${Buffer.from(`${l.username}:${l.password}`).toString('base64')}`;

/** `cosafe <args>` as startCosafe runs it; with `cpuProfileDir`, with V8's profiler on (node refuses --cpu-prof in NODE_OPTIONS). */
export function spawnCosafe(args: string[], cpuProfileDir?: string): Spawned {
  return cpuProfileDir ? spawnLogged(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, COSAFE_BIN, ...args, '--log-format', 'json'], { env: { NO_COLOR: '1' } }) : startCosafe(args);
}

/** The gateway reached its broker, and cloud-sync (`hub`) sees it online. */
export async function waitForGateway(hub: StackProcess, gateway: StackProcess): Promise<void> {
  await waitUntil('the gateway to reach the hub', async () => (await gateway.health()).status === 200, 60_000, 200).catch(withOutput(gateway));
  // Cloud-sync keeps a gateway's messages only once its sessions hold the subscriptions; the retained status says they do.
  await waitUntil(
    'the hub to see the gateway',
    async () => {
      const res = await fetch(`${hub.httpUrl}/api/v1/gateways`, { headers: hub.authHeaders, signal: AbortSignal.timeout(5000) });
      return ((await res.json()) as { gateways: { gateway: string; state: string }[] }).gateways.some((g) => g.gateway === GATEWAY && g.state === 'online');
    },
    60_000,
    200,
  ).catch(withOutput(hub));
}
