import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../helpers/processes.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// First, before node-opcua loads: keeps its console warnings out of tests and the demo.
import './node-opcua-quiet.js';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { DataType, MessageSecurityMode, SecurityPolicy, StatusCodes, Variant, type StatusCode } from 'node-opcua-client';
import { OPCUAServer } from 'node-opcua-server';

/** What the simulator needs of an address-space variable. */
interface UAVariable {
  setValueFromSource(value: Variant, statusCode?: StatusCode): void;
}

/**
 * A building management system's OPC-UA server for the sprinkler pump room, with
 * the node ids of the built-in profile `opcua-bms-sprinkler-system`
 * (ns=2;s=Sprinkler.*). Values drift the way a plant's do; a test sets any of
 * them (`setValue`) or gives it a bad status (`setBadStatus`). It stops and
 * starts again on the same port (`restart`), as a BMS does after an update or
 * a power cut: every session and subscription is gone afterwards.
 *
 * Used by the integration tests and by `cosafe demo`. It listens on loopback
 * only, and its certificate store is a temporary folder that accepts every
 * client certificate: convenient for tests, never what a production server
 * does (there the operator trusts each client certificate explicitly).
 */
export const SPRINKLER_NAMESPACE_URI = 'urn:cosafe:simulator:sprinkler';

export const sprinklerPoints = {
  'Sprinkler.AlarmValve.FlowSwitch': { dataType: DataType.Boolean, initial: false },
  'Sprinkler.Pump.Running': { dataType: DataType.Boolean, initial: false },
  'Sprinkler.Pump.Fault': { dataType: DataType.Boolean, initial: false },
  'Sprinkler.Pump.DischargePressure': { dataType: DataType.Double, initial: 8.4, unit: 'bar', range: [0, 25] },
  'Sprinkler.Tank.Level': { dataType: DataType.Double, initial: 96.5, unit: '%', range: [0, 100] },
} as const;
export type SprinklerPoint = keyof typeof sprinklerPoints;

export interface OpcuaSprinklerServerOptions {
  /** TCP port; default: a free one, kept across restarts. */
  port?: number;
  /** Require this user; anonymous sessions are then refused. */
  user?: { username: string; password: string };
  /** Security modes offered: None and/or SignAndEncrypt with Basic256Sha256. Default both. */
  security?: ('None' | 'SignAndEncrypt')[];
  /** Milliseconds between simulation steps; 0 holds every value still. Default 500. */
  simulateEveryMs?: number;
  /** The server's PKI folder (its certificate, trusted clients); default a temporary one. */
  pkiDir?: string;
}

interface PointState {
  value: boolean | number;
  status: StatusCode;
  /** Set by a test: the simulation leaves it alone. */
  held: boolean;
}

export class OpcuaSprinklerServer {
  private server: OPCUAServer | undefined;
  private certificateManager: OPCUACertificateManager | undefined;
  private readonly variables = new Map<SprinklerPoint, UAVariable>();
  private readonly state = new Map<SprinklerPoint, PointState>();
  private timer: NodeJS.Timeout | undefined;
  private port: number | undefined;
  private readonly pkiDir: string;
  private readonly ownPki: boolean;
  private step = 0;
  private readonly clients = new Set<string>();

  constructor(private readonly o: OpcuaSprinklerServerOptions = {}) {
    this.port = o.port;
    this.ownPki = o.pkiDir === undefined;
    this.pkiDir = o.pkiDir ?? mkdtempSync(join(tmpdir(), 'cosafe-opcua-sim-pki-'));
    for (const [name, p] of Object.entries(sprinklerPoints) as [SprinklerPoint, (typeof sprinklerPoints)[SprinklerPoint]][]) {
      this.state.set(name, { value: p.initial, status: StatusCodes.Good, held: false });
    }
  }

  /** opc.tcp://127.0.0.1:<port>; known once started. */
  get endpointUrl(): string {
    if (this.port === undefined) throw new Error('the OPC-UA simulator has not been started');
    return `opc.tcp://127.0.0.1:${this.port}`;
  }

  /** The node id of a point, as a profile names it. */
  static nodeId(point: SprinklerPoint): string {
    return `ns=2;s=${point}`;
  }

  /** The server's certificate (PEM): what an operator copies into the client's trusted folder. */
  get certificateFile(): string {
    return join(this.pkiDir, 'own', 'certs', 'certificate.pem');
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Sessions currently open on the server (a client that reconnected shows here). */
  get sessionCount(): number {
    return this.server?.currentSessionCount ?? 0;
  }

  /** What clients subscribed to (Part 4 §5.13): each subscription's publishing interval and how many items it monitors. */
  subscriptions(): { publishingIntervalMs: number; monitoredItems: number }[] {
    return (this.server?.engine.getSessions() ?? []).flatMap((session) =>
      session.publishEngine.subscriptions.map((sub) => ({ publishingIntervalMs: sub.publishingInterval, monitoredItems: sub.monitoredItemCount })),
    );
  }

  /** The ApplicationUris of the clients that activated a session (Part 4 §5.6.2 CreateSession clientDescription). */
  clientApplicationUris(): string[] {
    return [...this.clients];
  }

  async start(): Promise<void> {
    if (this.server) return;
    this.port ??= await freePort();
    if (!this.certificateManager) {
      // Tests only: every client certificate is accepted. A production server
      // keeps unknown certificates in rejected/ until the operator trusts them.
      this.certificateManager = new OPCUACertificateManager({ rootFolder: this.pkiDir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
      await this.certificateManager.initialize();
    }
    const security = this.o.security ?? ['None', 'SignAndEncrypt'];
    const { user } = this.o;
    const server = new OPCUAServer({
      port: this.port,
      host: '127.0.0.1',
      hostname: '127.0.0.1',
      serverCertificateManager: this.certificateManager,
      certificateFile: this.certificateFile,
      privateKeyFile: join(this.pkiDir, 'own', 'private', 'private_key.pem'),
      securityModes: security.map((m) => (m === 'None' ? MessageSecurityMode.None : MessageSecurityMode.SignAndEncrypt)),
      securityPolicies: security.map((m) => (m === 'None' ? SecurityPolicy.None : SecurityPolicy.Basic256Sha256)),
      allowAnonymous: user === undefined,
      ...(user ? { userManager: { isValidUser: (username: string, password: string) => username === user.username && password === user.password } } : {}),
      buildInfo: { productName: 'cosafe sprinkler BMS simulator', manufacturerName: 'cosafe' },
      serverInfo: { applicationUri: 'urn:cosafe:simulator:sprinkler-bms' },
    });
    server.on('session_activated', (session) => {
      const uri = session.clientDescription?.applicationUri;
      if (uri) this.clients.add(uri);
    });
    await server.initialize();
    this.buildAddressSpace(server);
    await server.start();
    this.server = server;
    const every = this.o.simulateEveryMs ?? 500;
    if (every > 0) this.timer = setInterval(() => this.simulate(), every);
  }

  /** Shuts the server down: every session, subscription and socket ends. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    this.variables.clear();
    if (server) {
      await server.shutdown(0);
      server.dispose();
    }
  }

  /** A server restart: down, then up again on the same port with the same values. */
  async restart(downForMs = 0): Promise<void> {
    await this.stop();
    if (downForMs > 0) await new Promise((r) => setTimeout(r, downForMs));
    await this.start();
  }

  /** Stops the server and removes its temporary certificate store. */
  async dispose(): Promise<void> {
    await this.stop();
    await this.certificateManager?.dispose();
    this.certificateManager = undefined;
    if (this.ownPki) rmSync(this.pkiDir, { recursive: true, force: true });
  }

  /** Sets a point (good status); the simulation leaves it at that value from now on. */
  setValue(point: SprinklerPoint, value: boolean | number): void {
    this.write(point, { value, status: StatusCodes.Good, held: true });
  }

  /** Gives a point a bad status, as a server does when its sensor fails (OPC-UA Part 4 §7.34). */
  setBadStatus(point: SprinklerPoint, status: StatusCode = StatusCodes.BadSensorFailure): void {
    const s = this.state.get(point)!;
    this.write(point, { ...s, status, held: true });
  }

  getValue(point: SprinklerPoint): boolean | number {
    return this.state.get(point)!.value;
  }

  private write(point: SprinklerPoint, next: PointState): void {
    this.state.set(point, next);
    this.variables.get(point)?.setValueFromSource(new Variant({ dataType: sprinklerPoints[point].dataType, value: next.value }), next.status);
  }

  private buildAddressSpace(server: OPCUAServer): void {
    const addressSpace = server.engine.addressSpace!;
    // ns=0 is the standard, ns=1 the server's own namespace; the profile's node ids are in ns=2.
    const namespace = addressSpace.registerNamespace(SPRINKLER_NAMESPACE_URI);
    const sprinkler = namespace.addObject({ browseName: 'Sprinkler', organizedBy: addressSpace.rootFolder.objects });
    const folders = new Map<string, ReturnType<typeof namespace.addObject>>();
    for (const [name, p] of Object.entries(sprinklerPoints) as [SprinklerPoint, (typeof sprinklerPoints)[SprinklerPoint]][]) {
      const [, group, leaf] = name.split('.') as [string, string, string];
      let parent = folders.get(group);
      if (!parent) {
        parent = namespace.addObject({ browseName: group, componentOf: sprinkler });
        folders.set(group, parent);
      }
      const common = { componentOf: parent, browseName: leaf, nodeId: `s=${name}`, minimumSamplingInterval: 100 };
      // Analog values carry their EURange (OPC-UA Part 8 §5.3.2), which a percent deadband needs.
      const variable =
        'range' in p
          ? namespace.addAnalogDataItem({ ...common, dataType: 'Double', engineeringUnitsRange: { low: p.range[0], high: p.range[1] } })
          : namespace.addVariable({ ...common, dataType: 'Boolean' });
      const s = this.state.get(name)!;
      variable.setValueFromSource(new Variant({ dataType: p.dataType, value: s.value }), s.status);
      this.variables.set(name, variable);
    }
  }

  /** A pump room at rest: pressure and tank level wander a little; flow starts the pump. */
  private simulate(): void {
    this.step++;
    const flowing = this.state.get('Sprinkler.AlarmValve.FlowSwitch')!.value === true;
    this.drift('Sprinkler.Pump.Running', () => flowing);
    this.drift('Sprinkler.Pump.DischargePressure', (v) => clamp(flowing ? Number(v) + (6.5 - Number(v)) * 0.3 : 8.4 + Math.sin(this.step / 20) * 0.2 + noise(0.05), 0, 25));
    this.drift('Sprinkler.Tank.Level', (v) => clamp(flowing ? Number(v) - 0.2 : 96.5 + Math.sin(this.step / 60) * 1 + noise(0.1), 0, 100));
  }

  private drift(point: SprinklerPoint, next: (v: boolean | number) => boolean | number): void {
    const s = this.state.get(point)!;
    if (s.held) return;
    const value = next(s.value);
    const rounded = typeof value === 'number' ? Math.round(value * 100) / 100 : value;
    if (rounded !== s.value) this.write(point, { ...s, value: rounded });
  }
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const noise = (amp: number) => (Math.random() * 2 - 1) * amp;

