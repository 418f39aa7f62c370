import { join, resolve, dirname, isAbsolute } from 'node:path';
import { z } from 'zod';
import { CosafeError } from './errors.js';
import { AgencyConfig, PublicConfig } from './public-config.js';
import { TimeSeriesConfig } from './time-series-config.js';
import { BridgePrefix, BrokerRole, CredentialRole, HTTP_ONLY_ROLES, underPrefix } from './vocabulary.js';
import { describeRange, expandDevices, ID_PLACEHOLDER, isRange, parseRange } from './device-ranges.js';
import { explainIssues, formatPath, loadYamlFile } from './yaml-file.js';

/**
 * The one config schema, with defaults and descriptions. Validated once at
 * start-up with every error reported, then frozen.
 */
const Id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-" (it becomes an MQTT topic level)');
const Port = z.number().int().min(0).max(65535);
const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const MqttUrl = z.url({ protocol: /^(mqtt|mqtts|tcp|ws|wss)$/, error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL' });
/** A cluster of brokers on one Redis (broker/backends/redis-backend.ts). */
const BrokerClusterConfig = z
  .object({
    redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).describe('The Redis every broker of the cluster shares, one database per cluster (redis://host:6379/2); run it with appendonly yes (appendfsync always or everysec, see the README)'),
    brokerId: Id.optional().describe('This broker in logs and in Redis; default: host name, process id and a random part (a new one each start)'),
    heartbeatMs: z
      .number()
      .int()
      .min(200)
      .max(60_000)
      .default(2000)
      .describe("How often a broker tells the others it is alive; after 3 missed beats they publish the last wills of the dead broker's clients (a gateway's status turns offline)"),
    livenessMs: z
      .number()
      .int()
      .min(300)
      .max(120_000)
      .default(6000)
      .describe('A broker silent in Redis this long is dead: another broker takes over and publishes what it had acknowledged and not yet queued'),
  })
  .strict();

/** Several cloud-sync workers splitting the sites (cloud-sync/partitions/, README "Cloud-sync workers"). */
const CloudSyncPartitionsConfig = z
  .object({
    count: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .describe('How many partitions the sites fall into (hash of the site id mod count): fixed for the life of the cluster, the same in every worker; more than the workers you will ever run'),
    redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).describe("The Redis the workers keep their leases in (the brokers' Redis: redis://host:6379/0)"),
    workerId: Id.optional().describe('This worker in Redis and in the names of its own broker sessions; default: COSAFE_INSTANCE, else the host name. Two workers on one machine need two ids'),
    leaseTtlMs: z
      .number()
      .int()
      .min(300)
      .max(120_000)
      .default(10_000)
      .describe("How long a partition's lease lasts unless renewed (every third of it): a worker that dies leaves its partitions to the others after this long"),
  })
  .strict();

/** One broker, or the brokers of a cluster (broker.cluster) that a client fails over between. */
const BrokerUrls = z.union([MqttUrl, z.array(MqttUrl).min(1, 'must name at least one broker')]);

/** An IANA time zone name the runtime knows (Node's ICU data). */
const TimeZone = z.string().refine((zone) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone name such as Europe/Berlin or UTC');

const PemFile = z.string().refine((p) => isAbsolute(p), 'must be an absolute path to a PEM file');

/** opcua: how to open the secure channel and the session (OPC-UA Part 4 §5.5.2, §5.6.2, §7.41). */
export const OpcuaConnectionConfig = z
  .object({
    securityMode: z.enum(['None', 'Sign', 'SignAndEncrypt']).default('None').describe('Message security of the secure channel'),
    securityPolicy: z
      .enum(['None', 'Basic256Sha256'])
      .optional()
      .describe('Security policy; default None for securityMode None, else Basic256Sha256'),
    certificateFile: PemFile.optional().describe("The gateway's client certificate; default: one made in dataDir/opcua-pki on first use"),
    privateKeyFile: PemFile.optional().describe('The private key of certificateFile'),
    username: z.string().min(1).optional().describe('User name for the session; default: anonymous'),
    password: z.string().optional().describe('Password of username'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.securityMode === 'None' && o.securityPolicy !== undefined && o.securityPolicy !== 'None') {
      ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: `securityPolicy ${o.securityPolicy} needs securityMode Sign or SignAndEncrypt` });
    }
    if (o.securityMode !== 'None' && o.securityPolicy === 'None') {
      ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: `securityMode ${o.securityMode} needs a securityPolicy other than None` });
    }
    if ((o.certificateFile === undefined) !== (o.privateKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: [o.certificateFile ? 'privateKeyFile' : 'certificateFile'], message: 'give certificateFile and privateKeyFile together' });
    }
    if ((o.username === undefined) !== (o.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: [o.username ? 'password' : 'username'], message: 'give username and password together' });
    }
  });
export type OpcuaConnectionConfig = z.infer<typeof OpcuaConnectionConfig>;

export const DeviceConfig = z
  .object({
    id: Id.describe('Device id, unique within the site'),
    profile: z.string().describe('Id of the device profile (see `cosafe profiles list`)'),
    location: z.string().max(200).optional().describe('Where the device is, for the fire department ("2F kitchen")'),
    // Transport addresses: which one a device needs depends on its profile's transport.
    topic: z.string().min(1).optional().describe('mqtt: topic the device publishes on; default: the contract uplink topic of the device'),
    bridge: Id.optional().describe('mqtt: the bridge (gateway.bridges) that publishes for this device; its topic is <prefix>/<name>'),
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[^+#\u0000-\u001f]+$/, 'must be a topic name without "+", "#" or control characters')
      .optional()
      .describe("with bridge: the device's name at the bridge (zigbee2mqtt's friendly name); default: the device id"),
    port: z.string().min(1).optional().describe('serial-lines, modbus-rtu: serial port path, e.g. /dev/ttyUSB0'),
    unitId: z.number().int().min(1).max(247).optional().describe("modbus-rtu: unit (slave) id on the bus; default: the profile's"),
    endpoint: z.string().regex(/^opc\.tcp:\/\/.+/, 'must be an opc.tcp:// URL').optional().describe('opcua: server endpoint URL'),
    opcua: OpcuaConnectionConfig.optional().describe('opcua: security mode and policy, certificate, user; default: no security, anonymous'),
    timeZone: TimeZone.optional().describe("serial-lines: the zone of the panel's clock, for the times it prints (IANA name, e.g. Europe/Berlin); default: the gateway host's"),
  })
  .strict();
export type DeviceConfig = z.infer<typeof DeviceConfig>;

/**
 * Many MQTT devices of one profile in one entry (core/device-ranges.ts): the
 * ids from `range.from` to `range.to` (`th-0001` to `th-1000`, zero padding
 * kept), each with its own topic as a single device has, the other fields
 * shared. Only what every device of the range can share is allowed: no port,
 * unit or endpoint, and a topic or name must contain {id}.
 */
export const DeviceRangeConfig = z
  .object({
    range: z
      .object({ from: Id.describe('The first device id, ending in its number: th-0001'), to: Id.describe('The last: th-1000 (as many digits as from when zero-padded)') })
      .strict()
      .describe('The device ids of the range, from and to included'),
    profile: DeviceConfig.shape.profile,
    location: DeviceConfig.shape.location.describe('Where the devices are, shared by all of them ("3F, offices")'),
    topic: DeviceConfig.shape.topic.describe(`mqtt: the topic each device publishes on, with ${ID_PLACEHOLDER} for its id; default: the contract uplink topic of each`),
    bridge: DeviceConfig.shape.bridge,
    name: DeviceConfig.shape.name.describe(`with bridge: each device's name at the bridge, with ${ID_PLACEHOLDER} for its id; default: the device id`),
  })
  .strict()
  .superRefine((r, ctx) => {
    const parsed = parseRange(r.range);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', path: ['range'], message: parsed });
    for (const field of ['topic', 'name'] as const) {
      if (r[field] !== undefined && !r[field].includes(ID_PLACEHOLDER)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `every device of a range needs its own ${field}: put ${ID_PLACEHOLDER} in it (${field === 'topic' ? 'acme/{id}/telemetry' : 'TH {id}'})` });
      }
    }
  });
export type DeviceRangeConfig = z.infer<typeof DeviceRangeConfig>;

/** An entry of `gateway.devices`: a range of devices if it has `range`, else one device. */
export const DeviceEntry = byKey('range', DeviceRangeConfig, DeviceConfig);
export type DeviceEntry = z.infer<typeof DeviceEntry>;

/**
 * `present` for an object with `key`, else `absent`. Unlike z.union, whose
 * "closest form" is a guess, a device with many typos is told about its typos,
 * not that it lacks `range`.
 */
function byKey<P extends z.ZodType, A extends z.ZodType>(key: string, present: P, absent: A): z.ZodType<z.output<P> | z.output<A>, z.input<P> | z.input<A>> {
  return z.unknown().transform((value, ctx) => {
    const schema = value !== null && typeof value === 'object' && key in value ? present : absent;
    const result = schema.safeParse(value);
    if (result.success) return result.data as z.output<P> | z.output<A>;
    for (const issue of explainIssues(result.error.issues)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  }) as unknown as z.ZodType<z.output<P> | z.output<A>, z.input<P> | z.input<A>>;
}

const WebhookSecret = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be a Standard Webhooks secret: "whsec_" then base64')
  .describe('Signing secret shared with the fire department');

/** How a fire department receives alarms: Standard Webhooks, or MQTT on its district's dispatch topic. */
export const DispatchChannelConfig = z.discriminatedUnion('type', [
  z.object({ type: z.literal('webhook'), url: HttpUrl.describe('Webhook endpoint that receives alarm events'), secret: WebhookSecret }).strict(),
  z
    .object({ type: z.literal('mqtt') })
    .strict()
    .describe("Publish on cosafe/v1/dispatch/<district>/alarms/<site>; the department's credential reads dispatch/<district>/#"),
]);
export type DispatchChannelConfig = z.infer<typeof DispatchChannelConfig>;

export const FireDepartmentConfig = z
  .object({
    id: Id,
    district: Id.optional().describe('The district it serves; without one it gets the alarms of every district'),
    primary: z
      .boolean()
      .default(true)
      .describe("false: it gets only what an escalation step names it for (a backup centre, a duty officer's endpoint)"),
    url: HttpUrl.optional().describe('Webhook endpoint (shorthand for one channel of type webhook)'),
    secret: WebhookSecret.optional(),
    channels: z.array(DispatchChannelConfig).default([]).describe('Its channels: webhook (url, secret) and/or mqtt'),
    classes: z
      .array(z.enum(['fire', 'gas', 'co', 'waterflow', 'intrusion', 'supervisory', 'trouble']))
      .default(['fire', 'gas', 'co', 'waterflow'])
      .describe('Which signal classes this department receives'),
  })
  .strict()
  .superRefine((d, ctx) => {
    if ((d.url === undefined) !== (d.secret === undefined)) ctx.addIssue({ code: 'custom', path: [d.url ? 'secret' : 'url'], message: 'give url and secret together' });
    if (!d.url && d.channels.length === 0) ctx.addIssue({ code: 'custom', path: ['channels'], message: 'a fire department needs at least one channel (url and secret, or channels)' });
    d.channels.forEach((c, i) => {
      if (c.type === 'mqtt' && !d.district) ctx.addIssue({ code: 'custom', path: ['channels', i], message: 'an mqtt channel publishes on its district\'s dispatch topic: give the department a district' });
    });
  })
  .transform(({ url, secret, ...d }) => ({ ...d, channels: url && secret ? [{ type: 'webhook' as const, url, secret }, ...d.channels] : d.channels }));
export type FireDepartmentConfig = z.infer<typeof FireDepartmentConfig>;

/** An escalation step: who else is told when an alarm is still not acknowledged. */
export const EscalationStepConfig = z
  .object({
    notify: z.array(Id).default([]).describe('Fire departments (ids) told at this step, on top of everyone told before'),
    afterSeconds: z.number().positive().max(86_400).optional().describe("Wait before this step; default: the district's ackTimeoutSeconds"),
  })
  .strict();

/** Per district: how long a fire department has to acknowledge, and who is told next. */
export const DistrictPolicyConfig = z
  .object({
    ackTimeoutSeconds: z.number().positive().max(86_400).optional().describe('Default: cloudSync.alarms.ackTimeoutSeconds'),
    escalation: z
      .array(EscalationStepConfig)
      .default([])
      .describe('Steps taken one after the other while the alarm is unacknowledged; the last one repeats for as long as it stays so'),
  })
  .strict();
export type DistrictPolicyConfig = z.infer<typeof DistrictPolicyConfig>;

/** The alarm lifecycle at the hub (ISA-18.2), escalation and CAP 1.2. */
export const AlarmsConfig = z
  .object({
    ackTimeoutSeconds: z
      .number()
      .positive()
      .max(86_400)
      .default(90)
      .describe('An alarm not acknowledged this long after it was first delivered is sent again and escalated (NFPA 72 allows 90 s to the receiving centre)'),
    escalateClasses: z
      .array(z.enum(['fire', 'gas', 'co', 'waterflow', 'intrusion', 'supervisory', 'trouble']))
      .default(['fire', 'gas', 'co', 'waterflow'])
      .describe('Signal classes that escalate while unacknowledged'),
    maxShelveMinutes: z.number().int().min(1).max(10_080).default(1440).describe('Longest a supervisory or trouble alarm may be shelved'),
    districts: z.record(Id, DistrictPolicyConfig).default({}).describe('Escalation policy per district'),
    cap: z
      .object({
        sender: z
          .string()
          .regex(/^[^\s,<&]{1,200}$/, 'must have no spaces, commas, "<" or "&" (CAP 1.2 §3.2.1 sender)')
          .default('cosafe-hub')
          .describe('CAP <sender>: who the hub is, e.g. alarms@hub.example.org'),
        status: z.enum(['Actual', 'Exercise', 'Test']).default('Actual').describe('CAP <status> of every message (the demo sends Exercise)'),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type AlarmsConfig = z.infer<typeof AlarmsConfig>;

export const InfluxConfig = z
  .object({
    api: z
      .enum(['v1', 'v2'])
      .default('v1')
      .describe('Write path: v1 = /write (InfluxDB 1.x); v2 = /api/v2/write through @influxdata/influxdb-client (InfluxDB 1.8+, 2.x, 3.x, and servers that speak it)'),
    url: HttpUrl.describe('InfluxDB base URL, e.g. http://127.0.0.1:8086'),
    database: z.string().min(1).default('cosafe').describe('v1: the database; also what InfluxQL reads name as db'),
    username: z.string().optional().describe('v1: user (HTTP basic auth)'),
    password: z.string().optional(),
    token: z.string().optional().describe('v2: API token (Authorization: Token ...)'),
    org: z.string().optional().describe('v2: organization (InfluxDB 2.x; ignored by servers without orgs)'),
    bucket: z.string().min(1).optional().describe('v2: bucket to write to; default: `database`'),
    batchSize: z.number().int().min(1).max(50_000).default(5000).describe('Points per write request'),
    drainBatchSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(20_000)
      .describe('Points per write request while a backlog drains (after an outage): fewer, larger requests drain faster'),
    flushIntervalMs: z.number().int().min(1).default(100).describe('Longest a point waits for its batch'),
    maxInFlight: z.number().int().min(1).max(16).default(4).describe('Concurrent write requests'),
    maxRetryDelayMs: z.number().int().min(100).max(600_000).default(30_000).describe('Longest wait between retries while InfluxDB fails (exponential backoff with full jitter)'),
    maxBufferedPoints: z
      .number()
      .int()
      .min(1000)
      .default(5_000_000)
      .describe('Points kept in the on-disk buffer (dataDir/influx-buffer.db) while InfluxDB is unreachable; past it the oldest readings are dropped and counted (events never)'),
  })
  .strict();
export type InfluxConfig = z.infer<typeof InfluxConfig>;

/** How a gateway or cloud-sync in its own process logs in to the hub broker. */
export const MqttCredentialsConfig = z
  .object({
    username: z.string().min(1).describe('Identity id, as printed by `cosafe credentials add`'),
    password: z.string().min(1).describe('The secret printed once by `cosafe credentials add` (or `rotate`)'),
  })
  .strict();
export type MqttCredentialsConfig = z.infer<typeof MqttCredentialsConfig>;

/** TLS files of a client of the hub broker (an mqtts:// brokerUrl). */
export const MqttClientTlsConfig = z
  .object({
    ca: z.string().optional().describe('PEM file of the CA that signed the broker certificate (default: the system CAs)'),
    cert: z.string().optional().describe('PEM client certificate: its subject CN is the identity id (instead of a password)'),
    key: z.string().optional().describe('PEM private key of the client certificate'),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together' });
export type MqttClientTlsConfig = z.infer<typeof MqttClientTlsConfig>;

// Owners and monitors log in to the HTTP API only: an MQTT listener refuses them unless its roles name them.
const AUTHENTICATED_ROLES = CredentialRole.options.filter((r) => !HTTP_ONLY_ROLES.includes(r));

const roles = (fallback: readonly BrokerRole[], what: string) =>
  z
    .array(BrokerRole)
    .min(1)
    .default([...fallback])
    .describe(`Roles admitted on the ${what} listener (${BrokerRole.options.join(', ')})`);

/**
 * A TLS server's certificate options, the same for the broker's TLS listener
 * and the hub's HTTP listener: one set of files can serve both.
 */
const tlsServerFiles = {
  cert: z.string().optional().describe('PEM file of the server certificate (chain)'),
  key: z.string().optional().describe('PEM file of the server private key'),
  ca: z.string().optional().describe('PEM file of the CA(s) that sign client certificates'),
  requestClientCert: z
    .boolean()
    .default(false)
    .describe('Ask clients for a certificate signed by `ca`; a verified certificate logs in as the identity named by its subject CN, without a password'),
};

function checkTlsServerFiles(t: { enabled: boolean; cert?: string | undefined; key?: string | undefined; ca?: string | undefined; requestClientCert: boolean }, ctx: z.RefinementCtx): void {
  if (!t.enabled) return;
  if (!t.cert) ctx.addIssue({ code: 'custom', path: ['cert'], message: 'is required when TLS is enabled' });
  if (!t.key) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is required when TLS is enabled' });
  if (t.requestClientCert && !t.ca) ctx.addIssue({ code: 'custom', path: ['ca'], message: 'is required with requestClientCert (the CA that signs client certificates)' });
}

export const HttpConfig = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: Port.default(8080).describe("Hub HTTP API and pages (health, readings, metrics, the owners' and fire departments' pages), or a lone gateway's health and metrics; 0 picks a free port"),
    tls: z
      .object({ enabled: z.boolean().default(false).describe('HTTPS on the HTTP listener (the pages\' session cookies are then Secure)'), ...tlsServerFiles })
      .strict()
      .superRefine(checkTlsServerFiles)
      .prefault({}),
    sessions: z
      .object({
        idleMinutes: z.number().int().min(1).max(7 * 24 * 60).default(480).describe("A page's session ends after this long unused (a dispatcher's shift keeps it in use: the console's live stream counts)"),
        maxHours: z.number().int().min(1).max(30 * 24).default(24).describe('A session ends this long after signing in, used or not'),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        authFailuresPerMinute: z.number().int().min(1).default(10).describe('Failed sign-ins (and HTTP Basic/Bearer secrets) per remote address and identity per minute; then that identity is refused from that address for the rest of the minute (HTTP 429)'),
        authFailedIdentitiesPerMinute: z.number().int().min(1).default(20).describe('Different identities with a failed sign-in per remote address per minute; then the address is refused for the rest of the minute'),
      })
      .strict()
      .prefault({}),
    allowedOrigins: z
      .array(z.url({ protocol: /^https?$/ }).transform((u) => new URL(u).origin))
      .default([])
      .describe('Origins besides the hub\'s own address that may send changes (a reverse proxy\'s public URL, e.g. https://hub.example)'),
    trustProxy: z
      .union([z.boolean(), z.array(z.string())])
      .default(false)
      .describe('Take the client address and protocol from X-Forwarded-For/-Proto: true, or the proxies\' addresses (CIDR); the login limits count per client address'),
  })
  .strict();
export type HttpConfig = z.infer<typeof HttpConfig>;

export const BrokerListenersConfig = z
  .object({
    tcp: z
      .object({
        enabled: z.boolean().default(true).describe('MQTT over TCP. Plain text: keep it on loopback or a trusted network, or turn it off and use TLS'),
        host: z.string().optional().describe('Default: broker.host'),
        port: Port.optional().describe('Default: broker.port; 0 picks a free port'),
        roles: roles(AUTHENTICATED_ROLES, 'TCP'),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        enabled: z.boolean().default(false).describe('MQTT over TLS'),
        host: z.string().optional().describe('Default: broker.host'),
        port: Port.default(8883).describe('0 picks a free port'),
        ...tlsServerFiles,
        roles: roles(AUTHENTICATED_ROLES, 'TLS'),
      })
      .strict()
      .superRefine(checkTlsServerFiles)
      .prefault({}),
    ws: z
      .object({
        enabled: z.boolean().default(false).describe('MQTT over WebSocket, for browsers (residents\' alert pages)'),
        host: z.string().optional().describe('Default: broker.host'),
        port: Port.default(9001).describe('0 picks a free port'),
        path: z.string().startsWith('/').default('/mqtt').describe('HTTP path of the WebSocket endpoint'),
        roles: roles(['resident'], 'WebSocket'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((l, ctx) => {
    // Residents are anonymous: admitting them means admitting anyone, which only the WebSocket listener does.
    for (const name of ['tcp', 'tls'] as const) {
      const i = l[name].roles.indexOf('resident');
      if (i >= 0) ctx.addIssue({ code: 'custom', path: [name, 'roles', i], message: 'resident (anonymous) is admitted on the WebSocket listener only' });
    }
  });

export const BrokerLimitsConfig = z
  .object({
    maxPacketBytes: z
      .number()
      .int()
      .min(1024)
      .max(268_435_455)
      .default(1_048_576)
      .describe('Largest MQTT packet accepted; a bigger one ends the connection. A gateway batch (batch.maxReadings) takes up to ~350 bytes a reading'),
    maxInflightInbound: z.number().int().min(1).max(65_535).default(100).describe('QoS 2 messages one client may hold unacknowledged (Aedes maxInflightInbound)'),
    queueLimit: z.number().int().min(1).max(10_000).default(42).describe('Packets a client may send before its CONNECT is accepted (Aedes queueLimit)'),
    publishesPerSecond: z.number().positive().default(100).describe('Publish rate per client; faster publishes are held back, not dropped'),
    publishBurst: z.number().int().min(1).default(500).describe('Publishes a client may send at once before the rate applies'),
    maxHeldPublishes: z.number().int().min(1).default(1000).describe('Publishes held back for one client before it is disconnected'),
    maxConnections: z.number().int().min(1).default(10_000).describe('Open connections, all listeners together'),
    maxConnectionsPerIdentity: z.number().int().min(1).default(10).describe('Connections of one identity (anonymous residents excepted; services: maxConnectionsPerService)'),
    maxConnectionsPerService: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Connections of one service identity (cloud-sync), over the cluster: one worker opens 4, and with cloudSync.partitions 2 per partition plus 2 per worker'),
    // A site's NAT or a carrier's CGNAT puts a whole fleet behind one address, and after a hub restart all of it
    // reconnects at once: the default admits 1,000 devices twice over within the minute. Guessed secrets are held back
    // by authFailuresPerMinute and authFailedIdentitiesPerMinute, not by this.
    connectAttemptsPerMinute: z
      .number()
      .int()
      .min(1)
      .default(5000)
      .describe('New connections per remote address per minute; past it a CONNECT is refused with return code 3 (server unavailable), past twice it the connection is closed at once'),
    authFailuresPerMinute: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Failed logins per remote address and identity per minute; then that identity is refused from that address for the rest of the minute (the other identities behind the same address, a NAT, are still served)'),
    authFailedIdentitiesPerMinute: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('Different identities with a failed login per remote address per minute (password spraying); then the whole address is refused for the rest of the minute'),
    connectTimeoutMs: z.number().int().min(100).default(10_000).describe('Time a new connection has to send CONNECT'),
    maxTopicLevels: z.number().int().min(8).max(100).default(32).describe('Levels in a topic (Aedes maxTopicLevels)'),
    telemetryWindowBytes: z
      .number()
      .int()
      .min(65_536)
      .default(4_194_304)
      .describe(
        'Reading batches the broker takes before every subscriber has them (in its socket, or queued on disk for a session that is away); past it, gateways are held back and their telemetry waits in their outboxes. Bounds the hub memory in a burst; events are never held',
      ),
    uplinkWindow: z
      .number()
      .int()
      .min(10)
      // 200, not 1,000: with 1,000 devices flooding, 1,000 publishes in progress lived about 60 ms each, long
      // enough to outlive a scavenge and be promoted; at 200 the hub stored 8 % more readings at less CPU and
      // memory (`npm run bench -- --only devices`: four runs at 200, two at 1,000, alternated).
      .default(200)
      .describe(
        "Devices' own uplink publishes (QoS 1) the broker works on at once; past it, devices that keep sending are held back (not acknowledged yet) in turn, and what they send next waits in the device. Bounds the hub memory when thousands of devices send as fast as they can; a device with nothing in flight that was not held in the last second (a detector reporting an alarm) is never held",
      ),
  })
  .strict();

export const Config = z
  .object({
    dataDir: z.string().default('.cosafe').describe('Where state lives (relative to the config file)'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        format: z.enum(['pretty', 'json']).optional(),
      })
      .strict()
      .prefault({}),
    telemetryThreadNice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(10)
      .describe(
        "Linux: how many nice levels below the rest of the process its telemetry thread runs (the broker's telemetry queue, cloud-sync's telemetry lane), so that where the CPU is short alarms, on the main thread, go first; 0: the same priority",
      ),
    broker: z
      .object({
        host: z.string().default('0.0.0.0').describe('Address every listener binds to unless it names its own'),
        port: Port.default(1883).describe('MQTT over TCP (same as listeners.tcp.port); 0 picks a free port'),
        listeners: BrokerListenersConfig.prefault({}),
        limits: BrokerLimitsConfig.prefault({}),
        revocationCheckMs: z
          .number()
          .int()
          .min(100)
          .max(60_000)
          .default(1000)
          .describe('How often the broker looks for revoked or rotated credentials (and disconnects their sessions)'),
        persistence: z
          .enum(['disk', 'memory'])
          .default('disk')
          .describe('disk: persistent sessions, their QoS 1 messages and retained messages survive a crash of the broker (dataDir/broker.db); memory: lost on restart'),
        cluster: BrokerClusterConfig.optional().describe('Several brokers sharing one Redis (sessions, queues, retained messages and message routing there); without it, this broker alone (broker.persistence)'),
      })
      .strict()
      .transform((b) => ({
        ...b,
        listeners: {
          tcp: { ...b.listeners.tcp, host: b.listeners.tcp.host ?? b.host, port: b.listeners.tcp.port ?? b.port },
          tls: { ...b.listeners.tls, host: b.listeners.tls.host ?? b.host },
          ws: { ...b.listeners.ws, host: b.listeners.ws.host ?? b.host },
        },
      }))
      .prefault({}),
    http: HttpConfig.prefault({}),
    gateway: z
      .object({
        id: Id.default('gw-1'),
        site: Id.default('demo-site'),
        brokerUrl: BrokerUrls.optional().describe('Hub broker, or the brokers of a cluster (a list: each reconnect tries the next one); default: the embedded broker of this process'),
        credentials: MqttCredentialsConfig.optional().describe('Login to the hub broker (a gateway credential); default with the embedded broker: an internal one'),
        tls: MqttClientTlsConfig.optional().describe('TLS files for an mqtts:// brokerUrl'),
        deviceBrokerCredentials: MqttCredentialsConfig.optional().describe('Login to the deviceBrokerUrl broker (a gateway credential issued on that broker)'),
        deviceBrokerUrl: MqttUrl.optional().describe(
          'Broker the MQTT devices of the site publish to (one on the premises keeps them reporting while the hub is unreachable); default: the hub broker',
        ),
        batch: z
          .object({
            maxReadings: z.number().int().min(1).max(10_000).default(500),
            maxDelayMs: z.number().int().min(1).max(60_000).default(200),
          })
          .strict()
          .prefault({}),
        outbox: z
          .object({
            maxTelemetryReadings: z
              .number()
              .int()
              .min(100)
              .default(1_000_000)
              .describe('Readings kept in the outbox (dataDir/outbox-<gateway>.db) while the hub is unreachable; past it the oldest are dropped, counted and raised as trouble. Events are never dropped'),
            maxInFlight: z.number().int().min(1).max(1000).default(16).describe('Messages sent and not yet acknowledged by the hub (QoS 1 PUBACK)'),
            fsyncEvents: z
              .boolean()
              .default(true)
              .describe('Flush every alarm, supervisory and trouble event to the disk before it counts as accepted, so it survives a power cut (telemetry survives a crash of the process, not of the OS)'),
          })
          .strict()
          .prefault({}),
        deviceTime: z
          .object({
            maxAheadMs: z
              .number()
              .int()
              .min(1000)
              .max(86_400_000)
              .default(300_000)
              .describe("How far ahead of the gateway's clock a device's own time may be; past it the reading is restamped with the receive time, quality uncertain"),
            maxBehindMs: z
              .number()
              .int()
              .min(60_000)
              .max(31_536_000_000)
              .default(604_800_000)
              .describe("How far behind the gateway's clock a device's own time may be (readings a device kept while offline); past it the same"),
          })
          .strict()
          .prefault({})
          .describe("Bounds on the times devices stamp their readings and events with (MQTT payload times, OPC-UA source timestamps)"),
        profileDir: z.string().optional().describe('Directory of extra profile files (*.yaml)'),
        bridges: z
          .array(
            z
              .object({
                id: Id.describe('Named by the devices it publishes for (devices[].bridge)'),
                prefix: BridgePrefix.describe("Topic prefix it publishes under (zigbee2mqtt's mqtt.base_topic); its credential: cosafe credentials add --role bridge --site <site> --prefix <prefix>"),
              })
              .strict(),
          )
          .default([])
          .describe('Bridges (zigbee2mqtt-style: <prefix>/<name>, <prefix>/<name>/availability, <prefix>/bridge/state) that publish for several devices'),
        devices: z
          .array(DeviceEntry)
          .default([])
          .describe('The devices of the site: each with its id and profile, or a range of them (range: { from: th-0001, to: th-1000 })'),
      })
      .strict()
      .superRefine((g, ctx) => {
        duplicateDevices(g.devices).forEach((issue) => ctx.addIssue({ code: 'custom', ...issue }));
        g.devices.forEach((d, i) => {
          if (d.bridge !== undefined && !g.bridges.some((b) => b.id === d.bridge)) {
            ctx.addIssue({ code: 'custom', path: ['devices', i, 'bridge'], message: `no bridge "${d.bridge}" in gateway.bridges${g.bridges.length ? ` (${g.bridges.map((b) => b.id).join(', ')})` : ''}` });
          }
          if (d.bridge !== undefined && d.topic !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'topic'], message: 'give bridge (the topic is <prefix>/<name>) or topic, not both' });
          if (d.name !== undefined && d.bridge === undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'name'], message: 'name is the device\'s name at its bridge: give bridge too' });
        });
        g.bridges.forEach((b, i) => {
          g.bridges.slice(0, i).forEach((other) => {
            if (other.id === b.id) ctx.addIssue({ code: 'custom', path: ['bridges', i, 'id'], message: `bridge "${b.id}" is listed twice` });
            else if (underPrefix(b.prefix, other.prefix) || underPrefix(other.prefix, b.prefix)) {
              ctx.addIssue({ code: 'custom', path: ['bridges', i, 'prefix'], message: `"${b.prefix}" overlaps the prefix "${other.prefix}" of bridge "${other.id}"` });
            }
          });
        });
      })
      .prefault({}),
    cloudSync: z
      .object({
        brokerUrl: BrokerUrls.optional().describe('Hub broker, or the brokers of a cluster (a list: each reconnect tries the next one); default: the embedded broker of this process'),
        credentials: MqttCredentialsConfig.optional().describe('Login to the hub broker (a service credential); default with the embedded broker: an internal one'),
        tls: MqttClientTlsConfig.optional().describe('TLS files for an mqtts:// brokerUrl'),
        influx: InfluxConfig.optional().describe('InfluxDB to write readings to; without it, the local SQLite store'),
        store: z
          .object({
            retentionHours: z.number().positive().default(24).describe('How long the local store keeps readings'),
          })
          .strict()
          .prefault({}),
        fireDepartments: z.array(FireDepartmentConfig).default([]),
        alarms: AlarmsConfig.prefault({}),
        telemetryWorker: z
          .boolean()
          .default(true)
          .describe('Run the telemetry lane (decoding and storing reading batches) in a worker thread of its own, so it never holds up alarms and the broker'),
        public: PublicConfig.prefault({}).describe("Residents' alerts: which alarms become public, their area and words, the public endpoints"),
        agency: AgencyConfig.prefault({}).describe("Agencies' district summaries"),
        timeSeries: TimeSeriesConfig.prefault({}).describe("The hub's own records in InfluxDB for the Grafana dashboards: alarm lifecycle, public alerts, hub operations"),
        partitions: CloudSyncPartitionsConfig.optional().describe('Several cloud-sync workers, each taking the partitions of the sites whose leases it holds in Redis; without it, one worker takes every site'),
      })
      .strict()
      .superRefine((c, ctx) => {
        // Each worker knows only the alarms of its partitions; residents' cells and agencies' district
        // summaries are retained messages that each worker would overwrite with its part: a false all-clear.
        if (c.partitions && c.public.enabled) {
          ctx.addIssue({ code: 'custom', path: ['public', 'enabled'], message: "residents' alerts are not yet split between cloud-sync workers: set it to false with cloudSync.partitions" });
        }
        if (c.partitions && c.agency.enabled) {
          ctx.addIssue({ code: 'custom', path: ['agency', 'enabled'], message: 'agency summaries are not yet split between cloud-sync workers: set it to false with cloudSync.partitions' });
        }
        const ids = new Set<string>();
        c.fireDepartments.forEach((d, i) => {
          if (ids.has(d.id)) ctx.addIssue({ code: 'custom', path: ['fireDepartments', i, 'id'], message: `fire department "${d.id}" is listed twice` });
          ids.add(d.id);
        });
        for (const [district, policy] of Object.entries(c.alarms.districts)) {
          policy.escalation.forEach((step, i) =>
            step.notify.forEach((id, j) => {
              if (!ids.has(id)) ctx.addIssue({ code: 'custom', path: ['alarms', 'districts', district, 'escalation', i, 'notify', j], message: `no fire department "${id}" in cloudSync.fireDepartments` });
            }),
          );
        }
      })
      .prefault({}),
  })
  .strict();
export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;

/**
 * Device ids named twice, by single entries or ranges: one issue per pair of
 * entries (not one per id of two overlapping ranges), at the later entry,
 * naming the earlier one.
 */
function duplicateDevices(entries: readonly DeviceEntry[]): { path: (string | number)[]; message: string }[] {
  const firstEntry = new Map<string, number>();
  const clashes = new Map<string, { entry: number; earlier: number; id: string; count: number }>();
  for (const { device, entry } of expandDevices(entries)) {
    const earlier = firstEntry.get(device.id);
    if (earlier === undefined) {
      firstEntry.set(device.id, entry);
      continue;
    }
    const key = `${entry}/${earlier}`;
    const clash = clashes.get(key);
    if (clash) clash.count++;
    else clashes.set(key, { entry, earlier, id: device.id, count: 1 });
  }
  const where = (i: number) => {
    const e = entries[i]!;
    return isRange(e) ? `the range gateway.devices[${i}] (${describeRange(e)})` : `gateway.devices[${i}]`;
  };
  return [...clashes.values()].map(({ entry, earlier, id, count }) => {
    const what = count > 1 ? `devices "${id}" and ${count - 1} more are` : `device "${id}" is`;
    return { path: ['devices', entry, isRange(entries[entry]!) ? 'range' : 'id'], message: `${what} listed twice: here and in ${where(earlier)}` };
  });
}

/** Loads and validates a config file; relative paths in it are relative to the file. */
export function loadConfigFile(file: string): Config {
  return finalize(readConfigFile(file), dirname(resolve(file)));
}

/**
 * Validates a config file (errors with file and line) and returns it with its
 * defaults applied but paths not yet resolved, for callers that lay command-line
 * flags over it before `buildConfig`.
 */
export function readConfigFile(file: string): Config {
  return loadYamlFile(file, Config, { read: 'COSAFE_ERR_CONFIG_READ', invalid: 'COSAFE_ERR_CONFIG_INVALID' });
}

/** Validates a config given as an object (flags, tests); relative paths are relative to `baseDir`. */
export function buildConfig(input: ConfigInput, baseDir = process.cwd(), source = 'config'): Config {
  const result = Config.safeParse(input);
  if (!result.success) {
    const details = explainIssues(result.error.issues).map((i) => `${source} ${formatPath(i.path) || '(root)'}: ${i.message}`);
    throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${source} has ${details.length} error(s)`, { details });
  }
  return finalize(result.data, baseDir);
}

function finalize(config: Config, baseDir: string): Config {
  config.dataDir = resolve(baseDir, config.dataDir);
  if (config.gateway.profileDir) config.gateway.profileDir = resolve(baseDir, config.gateway.profileDir);
  // Certificate and key files, like every path in the file, are relative to it.
  for (const files of [config.broker.listeners.tls, config.http.tls, config.gateway.tls, config.cloudSync.tls]) {
    if (!files) continue;
    for (const key of ['cert', 'key', 'ca'] as const) if (files[key]) files[key] = resolve(baseDir, files[key]);
  }
  return deepFreeze(config);
}

export function dataPath(config: Config, name: string): string {
  return join(config.dataDir, name);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
