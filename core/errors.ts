/**
 * The one error catalog. Every error a user can see carries a stable code from
 * here, so logs, docs (docs/errors.md) and alerting rules can key on it. A test
 * keeps this table and the docs in sync.
 */
export const errorCatalog = {
  COSAFE_ERR_CONFIG_READ: 'cannot read the config file',
  COSAFE_ERR_CONFIG_INVALID: 'the config is invalid',
  COSAFE_ERR_CLI_USAGE: 'the command line is invalid',
  COSAFE_ERR_PROFILE_INVALID: 'a device profile is invalid',
  COSAFE_ERR_PROFILE_UNKNOWN: 'a device names a profile that does not exist',
  COSAFE_ERR_ADAPTER_UNKNOWN: 'a transport kind has no adapter',
  COSAFE_ERR_PAYLOAD_INVALID: 'a device payload could not be decoded',
  COSAFE_ERR_DEVICE_TIME: "a device's own time is too far from the gateway's clock",
  COSAFE_ERR_DEVICE_UNKNOWN: 'a message came from a device that is not configured',
  COSAFE_ERR_CONTRACT_INVALID: 'a message on the broker does not match the contract',
  COSAFE_ERR_INFLUX_WRITE: 'InfluxDB did not accept a write',
  COSAFE_ERR_INFLUX_REJECTED: 'InfluxDB rejected points as invalid',
  COSAFE_ERR_INFLUX_UNSAFE: 'a point holds what InfluxDB line protocol cannot carry safely, so it was not written',
  COSAFE_ERR_INFLUX_QUERY: 'InfluxDB did not answer an InfluxQL query',
  COSAFE_ERR_INFLUX_BUFFER: 'the on-disk buffer for InfluxDB could not store points',
  COSAFE_ERR_INFLUX_BUFFER_FULL: 'the on-disk buffer for InfluxDB was full and dropped its oldest readings',
  COSAFE_ERR_OUTBOX: "the gateway's outbox could not store readings or events",
  COSAFE_ERR_OUTBOX_FULL: "the gateway's outbox was full and dropped its oldest readings",
  COSAFE_ERR_BROKER_PERSISTENCE: 'the broker could not store a message, so it did not acknowledge it',
  COSAFE_ERR_BROKER_CLUSTER: 'the Redis of a cluster of brokers is unreachable or not durable',
  COSAFE_ERR_PARTITION_LEASE: 'a cloud-sync worker cannot renew its partition leases in Redis, or lost one to another worker',
  COSAFE_ERR_ALARM_STATE: 'a cloud-sync worker cannot write or read the shared alarm state of its partitions in Redis',
  COSAFE_ERR_BROKER_INTERNAL: 'the broker itself (not a client) met an error it goes on from',
  COSAFE_ERR_WEBHOOK_DELIVERY: 'a fire-department webhook delivery failed',
  COSAFE_ERR_HUB_UNREACHABLE: 'the hub HTTP API cannot be reached',
  COSAFE_ERR_STORE: 'the local reading store failed',
  COSAFE_ERR_AUTH_REJECTED: 'the broker refused a client at connect',
  COSAFE_ERR_ACL_DENIED: 'the broker denied a publish or a subscription',
  COSAFE_ERR_BROKER_LIMIT: 'a client hit a broker limit',
  COSAFE_ERR_TLS_FILES: 'a TLS certificate, key or CA file cannot be used',
  COSAFE_ERR_CREDENTIALS_STORE: 'the credential store cannot be opened, read or written',
  COSAFE_ERR_CREDENTIALS_CONFLICT: 'a credential contradicts one already issued',
  COSAFE_ERR_CREDENTIALS_UNKNOWN: 'no active credential has this id',
  COSAFE_ERR_OPCUA_CONNECT: 'an OPC-UA server cannot be reached, or the connection to it broke',
  COSAFE_ERR_OPCUA_SECURITY: 'an OPC-UA server and the gateway do not agree on security (certificate trust, security mode or policy)',
  COSAFE_ERR_OPCUA_SESSION: 'an OPC-UA server refused the session (user name, password) or lost it',
  COSAFE_ERR_OPCUA_SUBSCRIPTION: 'an OPC-UA subscription could not be created, ended, or went silent',
  COSAFE_ERR_OPCUA_NODE: 'a node id of a device profile cannot be monitored on its OPC-UA server',
  COSAFE_ERR_OPCUA_BAD_STATUS: 'an OPC-UA server reports a bad status for a value',
  COSAFE_ERR_DATADIR_IN_USE: 'another cosafe process uses the same state files',
  COSAFE_ERR_DATADIR_UNSAFE: 'the data directory cannot be made private to the user cosafe runs as',
  COSAFE_ERR_SITES_STORE: 'the site registry cannot be opened, read or written',
  COSAFE_ERR_SITE_INVALID: 'a site record (or a file of sites to import) is invalid',
  COSAFE_ERR_SITE_UNKNOWN: 'no site with this id is registered',
  COSAFE_ERR_SITE_UNREGISTERED: 'a gateway or an alarm names a site that is not in the registry (its alarms go to every fire department)',
  COSAFE_ERR_SITE_DISTRICT_MISMATCH: "a gateway credential's district disagrees with the site registry (the registry's district is used)",
  COSAFE_ERR_DISTRICT_UNATTENDED: "no fire department serves an alarm's district (it goes to every fire department)",
  COSAFE_ERR_ALARM_STORE: 'the alarm journal (dataDir/dispatch.db) could not record a transition',
  COSAFE_ERR_ALARM_UNKNOWN: 'no alarm with this id, or not one the caller may see',
  COSAFE_ERR_ACK_REFUSED: 'an acknowledgement was refused (wrong district, unknown or stale alarm, not allowed)',
  COSAFE_ERR_SHELVE_REFUSED: 'an alarm cannot be shelved (fire, gas and CO alarms never are) or the request is invalid',
  COSAFE_ERR_ESCALATION: 'an alarm was not acknowledged in time and was escalated',
  COSAFE_ERR_EVENT_LATE: 'an alarm "cleared" arrived after a newer activation of its condition and was not applied',
  COSAFE_ERR_MQTT_DISPATCH: 'an alarm could not be published on its MQTT dispatch topic (retried)',
  COSAFE_ERR_HTTP_UNAUTHENTICATED: 'an HTTP request carried no credential, or one that is unknown, revoked or wrong',
  COSAFE_ERR_HTTP_FORBIDDEN: "an HTTP request's credential may not do what it asked",
  COSAFE_ERR_HTTP_LOGIN_LIMIT: 'an HTTP sign-in or secret was refused unchecked after too many failed logins',
  COSAFE_ERR_HTTP_CSRF: 'a state-changing HTTP request came from another site, or without its session\'s CSRF token',
  COSAFE_ERR_PUBLIC_STORE: 'the public alert store (dataDir/public-alerts.db) could not record a public alert (reconciled again later)',
  COSAFE_ERR_PUBLIC_AREA: 'fewer than k registered sites fall even in the coarsest cell allowed for a public alert',
  COSAFE_ERR_PUBLIC_REQUEST: 'a request to the public endpoints is invalid (unknown cells, alert or district)',
  COSAFE_ERR_PUBLIC_RATE_LIMITED: 'a client sent too many requests to the public endpoints, or opened too many streams',
  COSAFE_ERR_FEED_PUBLISH: 'a public or agency message could not be published on MQTT (sent again on reconnect)',
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export class CosafeError extends Error {
  readonly code: ErrorCode;
  /** Every problem found, e.g. one line per invalid config field. */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: readonly string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CosafeError';
    this.code = code;
    this.details = options.details ?? [];
  }

  /** What a person reads: the message, then every detail on its own line. */
  describe(): string {
    return [`${this.code}: ${this.message}`, ...this.details.map((d) => `  ${d}`)].join('\n');
  }
}

export function isCosafeError(err: unknown): err is CosafeError {
  return err instanceof CosafeError;
}
