import { join, resolve } from 'node:path';
import { format } from 'node:util';
import type { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import type { OpcuaConnectionConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import { makeTreePrivate } from '../../core/private-files.js';
import { decodeOpcuaValues } from '../../device-profiles/codecs/opcua-values.js';
import type { DeviceBinding } from '../device-binding.js';
import type { Adapter, AdapterContext, AdapterHealth } from './adapter.js';
import { OpcuaEndpoint } from './opcua-endpoint.js';
import { defaultOpcuaTiming, type OpcuaLib, type OpcuaTiming } from './opcua-settings.js';

export interface OpcuaAdapterOptions {
  /** Retry and liveness timings; tests shorten them. */
  timing?: Partial<OpcuaTiming>;
}

/**
 * OPC-UA devices (a BMS, a PLC): every device with transport "opcua" is read
 * from its `endpoint` through subscriptions, never by polling (OPC-UA Part 4
 * §5.12, §5.13). Devices on one endpoint with the same security settings share
 * one client, session and subscription. Each data change is decoded with the
 * device's profile and handed on as it arrives.
 *
 * The client certificate store lives in `<dataDir>/opcua-pki`: the gateway's
 * own certificate is made there on first use (own/certs), and a server's
 * certificate is trusted only once an operator moved it from rejected/ to
 * trusted/certs/.
 */
export function createOpcuaAdapter(ctx: AdapterContext, options: OpcuaAdapterOptions = {}): Adapter {
  const timing: OpcuaTiming = { ...defaultOpcuaTiming, ...options.timing };
  const pkiDir = join(resolve(ctx.stateDir ?? '.cosafe'), 'opcua-pki');
  const groups = groupByConnection(ctx.devices);
  const errors: Record<string, number> = {};
  let lastValueAt: number | null = null;
  let endpoints: OpcuaEndpoint[] = [];

  const countError = (kind: string) => {
    errors[kind] = (errors[kind] ?? 0) + 1;
  };

  const onValue = (binding: DeviceBinding, nodeId: string, value: unknown, time: number) => {
    if (binding.profile.transport !== 'opcua') return;
    const outcome = decodeOpcuaValues(binding.profile, new Map([[nodeId, value]]), time);
    // A bad status is counted as badStatus by the endpoint; anything else the codec refuses is a decode error.
    if (value !== null && outcome.errors.length) countError('decode');
    if (outcome.values.length) lastValueAt = ctx.clock.now();
    ctx.onDecoded(binding, outcome);
  };

  return {
    kind: 'opcua',
    async start(signal) {
      if (groups.length === 0) return;
      const { client: lib, pki } = await loadOpcua(ctx.logger);
      if (signal.aborted) return;
      const openCertificateStore = async (): Promise<OPCUACertificateManager> => {
        const store = new pki.OPCUACertificateManager({
          rootFolder: pkiDir,
          // A server certificate is trusted only once an operator moved it to trusted/.
          automaticallyAcceptUnknownCertificate: false,
          // Read once per connection built instead: no watcher, no race with an operator moving a file.
          disableFileWatchers: true,
        });
        await store.initialize();
        makeTreePrivate(pkiDir);
        return store;
      };
      const keepPrivate = () => {
        try {
          makeTreePrivate(pkiDir);
        } catch (err) {
          ctx.logger.error({ err: (err as Error).message, pkiDir }, 'could not make the OPC-UA certificate store private (0700/0600)');
        }
      };
      endpoints = groups.map(
        (g) =>
          new OpcuaEndpoint({
            url: g.url,
            connection: g.connection,
            devices: g.devices,
            lib,
            openCertificateStore,
            afterAttempt: keepPrivate,
            pkiDir,
            logger: ctx.logger,
            clock: ctx.clock,
            timing,
            onValue,
            // OPC-UA reports by exception: a value that holds still sends nothing, so the
            // subscription's keep-alive is what proves the link to the gateway's supervision.
            onAlive: () => {
              for (const b of g.devices) ctx.onDecoded(b, { values: [], signals: [], errors: [] });
            },
            countError,
          }),
      );
      // Not awaited: a server that is down must not hold up the gateway; each
      // endpoint connects, and keeps trying, on its own.
      for (const e of endpoints) e.start();
    },
    async stop() {
      await Promise.all(endpoints.map((e) => e.stop()));
      endpoints = [];
    },
    hearing() {
      return new Set(endpoints.flatMap((e) => (e.connected ? e.health().devices : [])));
    },
    health(): AdapterHealth {
      return {
        kind: 'opcua',
        connected: endpoints.length > 0 && endpoints.every((e) => e.connected),
        lastValueAt,
        errors: { ...errors },
        endpoints: endpoints.map((e) => e.health()),
        // The same, in the shape every transport shares, for `cosafe status`.
        ports: endpoints.map((e) => {
          const h = e.health();
          return {
            port: h.address,
            device: h.devices.join(','),
            state: h.state,
            ...(h.retryInMs !== undefined ? { backoffMs: h.retryInMs } : {}),
            lastValueAt: h.lastValueAt,
            errors: { ...h.badNodes, ...h.badStatus, reconnects: h.reconnects, rebuilds: h.rebuilds },
          };
        }),
      };
    },
  };
}

interface ConnectionGroup {
  url: string;
  connection: OpcuaConnectionConfig;
  devices: DeviceBinding[];
}

/** One client per endpoint and security settings: two users on one server are two sessions. */
function groupByConnection(devices: readonly DeviceBinding[]): ConnectionGroup[] {
  const groups = new Map<string, ConnectionGroup>();
  for (const binding of devices) {
    const url = binding.device.endpoint;
    if (binding.profile.transport !== 'opcua' || url === undefined) continue;
    const c = binding.device.opcua;
    const connection: OpcuaConnectionConfig = {
      securityMode: c?.securityMode ?? 'None',
      ...(c?.securityPolicy ? { securityPolicy: c.securityPolicy } : {}),
      ...(c?.certificateFile ? { certificateFile: c.certificateFile } : {}),
      ...(c?.privateKeyFile ? { privateKeyFile: c.privateKeyFile } : {}),
      ...(c?.username !== undefined ? { username: c.username, password: c.password ?? '' } : {}),
    };
    const key = JSON.stringify([url, connection]);
    const group = groups.get(key) ?? { url, connection, devices: [] };
    group.devices.push(binding);
    groups.set(key, group);
  }
  return [...groups.values()];
}

interface OpcuaModules {
  client: OpcuaLib;
  pki: typeof import('node-opcua-certificate-manager');
}

let modules: Promise<OpcuaModules> | undefined;
let libraryLogger: Logger | undefined;

/**
 * node-opcua is loaded on first use: it takes about two seconds to import,
 * which a gateway without OPC-UA devices should not pay. Its own console output
 * (multi-line dumps, one per retry) goes to our logger at debug level, before
 * the client is imported: our log lines say what happens, at info and above.
 */
async function loadOpcua(logger: Logger): Promise<OpcuaModules> {
  libraryLogger = logger;
  modules ??= (async () => {
    const debug = await import('node-opcua-debug');
    const sink = (context: unknown, ...args: unknown[]) =>
      libraryLogger?.debug({ library: 'node-opcua', at: (context as { filename?: string } | undefined)?.filename }, format(...args));
    debug.setWarningLogger(sink);
    debug.setErrorLogger(sink);
    debug.setTraceLogger(sink);
    const [client, pki] = await Promise.all([import('node-opcua-client'), import('node-opcua-certificate-manager')]);
    return { client, pki };
  })();
  return modules;
}
