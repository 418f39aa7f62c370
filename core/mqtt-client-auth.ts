/**
 * How one of our MQTT clients (gateway publisher, MQTT adapter, cloud-sync)
 * logs in to the hub broker: a username (the identity id) and secret, and/or
 * TLS files. Resolved by the composition root from config or, for parts that
 * run next to the broker, from an internal identity.
 */
export interface MqttClientAuth {
  username?: string;
  password?: string;
  /** PEM: the CA that signed the broker's certificate. */
  ca?: Buffer;
  /** PEM: a client certificate whose subject CN is the identity id, and its key. */
  cert?: Buffer;
  key?: Buffer;
}

/** The mqtt.js connect options for `auth`. */
export function mqttAuthOptions(auth: MqttClientAuth | undefined): MqttClientAuth {
  if (!auth) return {};
  return Object.fromEntries(Object.entries(auth).filter(([, v]) => v !== undefined)) as MqttClientAuth;
}

/**
 * A hint for the log when the broker refuses a login (CONNACK 4 or 5), which
 * mqtt.js reports as an error with that code; undefined for other errors.
 */
export function refusalHint(err: Error & { code?: unknown }, credentialsField: string): string | undefined {
  if (err.code === 4) return `the hub does not accept these credentials: check ${credentialsField} (\`cosafe credentials list\` on the hub; a rotated secret must be updated)`;
  if (err.code === 5) return `the hub does not authorize this identity here: check ${credentialsField}, its role, and the roles the listener admits`;
  return undefined;
}
