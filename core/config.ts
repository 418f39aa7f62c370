import { join, resolve, dirname } from 'node:path';
import { z } from 'zod';
import { CosafeError } from './errors.js';
import { loadYamlFile, formatPath } from './yaml-file.js';

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

export const DeviceConfig = z
  .object({
    id: Id.describe('Device id, unique within the site'),
    profile: z.string().describe('Id of the device profile (see `cosafe profiles list`)'),
    location: z.string().max(200).optional().describe('Where the device is, for the fire department ("2F kitchen")'),
    // Transport addresses: which one a device needs depends on its profile's transport.
    topic: z.string().min(1).optional().describe('mqtt: topic the device publishes on; default: the contract uplink topic of the device'),
    port: z.string().min(1).optional().describe('serial-lines, modbus-rtu: serial port path, e.g. /dev/ttyUSB0'),
    unitId: z.number().int().min(1).max(247).optional().describe("modbus-rtu: unit (slave) id on the bus; default: the profile's"),
    endpoint: z.string().regex(/^opc\.tcp:\/\/.+/, 'must be an opc.tcp:// URL').optional().describe('opcua: server endpoint URL'),
  })
  .strict();
export type DeviceConfig = z.infer<typeof DeviceConfig>;

export const FireDepartmentConfig = z
  .object({
    id: Id,
    url: HttpUrl.describe('Webhook endpoint that receives alarm events'),
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be a Standard Webhooks secret: "whsec_" then base64')
      .describe('Signing secret shared with the fire department'),
    classes: z
      .array(z.enum(['fire', 'gas', 'co', 'waterflow', 'intrusion', 'supervisory', 'trouble']))
      .default(['fire', 'gas', 'co', 'waterflow'])
      .describe('Which signal classes this department receives'),
  })
  .strict();
export type FireDepartmentConfig = z.infer<typeof FireDepartmentConfig>;

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
    broker: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: Port.default(1883).describe('MQTT over TCP; 0 picks a free port'),
        persistence: z
          .enum(['disk', 'memory'])
          .default('disk')
          .describe('disk: persistent sessions, their QoS 1 messages and retained messages survive a crash of the broker (dataDir/broker.db); memory: lost on restart'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: Port.default(8080).describe('Hub HTTP API (health, readings, metrics), or a lone gateway\'s health and metrics; 0 picks a free port'),
      })
      .strict()
      .prefault({}),
    gateway: z
      .object({
        id: Id.default('gw-1'),
        site: Id.default('demo-site'),
        brokerUrl: MqttUrl.optional().describe('Hub broker; default: the embedded broker of this process'),
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
        profileDir: z.string().optional().describe('Directory of extra profile files (*.yaml)'),
        devices: z.array(DeviceConfig).default([]),
      })
      .strict()
      .superRefine((g, ctx) => {
        const seen = new Set<string>();
        g.devices.forEach((d, i) => {
          if (seen.has(d.id)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `device "${d.id}" is listed twice` });
          seen.add(d.id);
        });
      })
      .prefault({}),
    cloudSync: z
      .object({
        brokerUrl: MqttUrl.optional().describe('Hub broker; default: the embedded broker of this process'),
        influx: InfluxConfig.optional().describe('InfluxDB to write readings to; without it, the local SQLite store'),
        store: z
          .object({
            retentionHours: z.number().positive().default(24).describe('How long the local store keeps readings'),
          })
          .strict()
          .prefault({}),
        fireDepartments: z.array(FireDepartmentConfig).default([]),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;

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
    const details = result.error.issues.map((i) => `${source} ${formatPath(i.path as (string | number)[]) || '(root)'}: ${i.message}`);
    throw new CosafeError('COSAFE_ERR_CONFIG_INVALID', `${source} has ${details.length} error(s)`, { details });
  }
  return finalize(result.data, baseDir);
}

function finalize(config: Config, baseDir: string): Config {
  config.dataDir = resolve(baseDir, config.dataDir);
  if (config.gateway.profileDir) config.gateway.profileDir = resolve(baseDir, config.gateway.profileDir);
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
