import { z } from 'zod';

/**
 * The fixed vocabulary every part speaks: what is measured, in which unit, and
 * which class of signal a condition raises. Profiles may only use these words, so
 * a dashboard or a fire department never meets a metric it cannot interpret.
 */
export const metricUnits = {
  temperature: 'Cel',
  humidity: '%RH',
  smoke: 'bool',
  smoke_obscuration: '%/m',
  carbon_monoxide: 'ppm',
  combustible_gas: '%LEL',
  water_pressure: 'bar',
  water_flow: 'L/min',
  tank_level: '%',
  battery: '%',
  door_open: 'bool',
  tamper: 'bool',
  pump_running: 'bool',
  flow_switch: 'bool',
  fault: 'bool',
} as const;

export type Metric = keyof typeof metricUnits;

/**
 * What any metric name must look like, built in or declared by a profile: it
 * becomes an InfluxDB tag value and a Prometheus label, so it is bounded and
 * plain (snake_case ASCII).
 */
export const METRIC_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * What any unit must look like (UCUM-style codes such as `Cel`, `%RH`, `L/min`):
 * 0-16 printable ASCII characters, none of space, `"`, `\\`, `,` or `=`, so it can
 * never break a line of InfluxDB line protocol, a CSV cell or a label.
 */
export const UNIT_PATTERN = /^[!#-+\--<>-[\]-~]{0,16}$/;
export const Metric = z.enum(Object.keys(metricUnits) as [Metric, ...Metric[]]);

/**
 * The topic prefix of a bridge (zigbee2mqtt's `mqtt.base_topic`), in a bridge
 * credential and in a gateway's config: a topic name of whole levels, outside
 * the contract tree (`cosafe/`) and the broker's own (`$`), no wildcards.
 */
export const BridgePrefix = z
  .string()
  .max(128)
  .refine((t) => t.length > 0 && !/[+#\u0000]/.test(t) && t.split('/').every((level) => level.length > 0), 'must be a topic prefix such as "zigbee2mqtt", without "+", "#", or an empty level ("/" at an end)')
  .refine((t) => !t.startsWith('$') && t !== 'cosafe' && !t.startsWith('cosafe/'), 'must be outside "cosafe/" and "$"');

/** Whether a topic is the prefix itself or under it (`zigbee2mqtt`, `zigbee2mqtt/...`). */
export const underPrefix = (topic: string, prefix: string): boolean => topic === prefix || topic.startsWith(`${prefix}/`);

/** Signal classes, after NFPA 72's split of alarm, supervisory and trouble signals. */
export const SignalClass = z.enum(['fire', 'gas', 'co', 'waterflow', 'intrusion', 'supervisory', 'trouble']);
export type SignalClass = z.infer<typeof SignalClass>;

/**
 * Which signal goes first when several wait: alarm signals before supervisory
 * signals before trouble signals (NFPA 72 §10.7, signal priority; EN 54-2 §7 and
 * §8: the fire alarm condition before faults). Lower goes first. A fleet of devices
 * going silent at once raises hundreds of trouble signals; a fire alarm raised then
 * must not wait behind them.
 */
export function signalPriority(cls: string | undefined): number {
  if (cls === 'trouble') return 2;
  if (cls === 'supervisory') return 1;
  // Alarm classes, and anything the gateway cannot classify: never behind a known lesser signal.
  return 0;
}

/**
 * Who is asking, at the broker and at the hub's HTTP API: what they may publish
 * and read (the ACL in broker/auth/acl.ts) and see over HTTP (the permission
 * table in cloud-sync/http/permissions.ts). `resident` is the anonymous public,
 * admitted only on the WebSocket listener; every other role needs a credential.
 * `owner` (a person who owns one or more sites) and `monitor` (a Prometheus
 * scraper) are people and programs of the HTTP API: they get nothing over MQTT.
 */
export const BrokerRole = z.enum(['gateway', 'device', 'bridge', 'service', 'fire-department', 'agency', 'owner', 'monitor', 'admin', 'resident']);
export type BrokerRole = z.infer<typeof BrokerRole>;

/** Roles a credential can be issued for (everyone but the anonymous resident). */
export const CredentialRole = BrokerRole.exclude(['resident']);
export type CredentialRole = z.infer<typeof CredentialRole>;

/** Roles that use the HTTP API only: the broker's listeners do not admit them by default (their ACL grants nothing anyway). */
export const HTTP_ONLY_ROLES: readonly CredentialRole[] = ['owner', 'monitor'];
/**
 * The hazards a public alert names (residents' alerts): a sprinkler's waterflow
 * is announced as a fire. Intrusion, supervisory and trouble signals are never public.
 */
export const PublicHazard = z.enum(['fire', 'gas', 'co']);
export type PublicHazard = z.infer<typeof PublicHazard>;

/** BCP 47 language tag, as CAP 1.2 §3.2.2 <language> takes it: "en", "de", "en-GB". */
export const LanguageTag = z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/, 'must be a language tag such as "en", "de" or "en-GB"');
