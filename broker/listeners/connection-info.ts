import type { Duplex } from 'node:stream';
import type { BrokerRole } from '../../core/vocabulary.js';

export type ListenerName = 'tcp' | 'tls' | 'ws';

/** What the broker knows about a connection before its CONNECT: where it came in, from where, with which certificate. */
export interface ConnectionInfo {
  listener: ListenerName;
  /** Remote address (IPv4-mapped IPv6 addresses as plain IPv4). */
  address: string;
  /** Roles this listener admits. */
  admits: ReadonlySet<BrokerRole>;
  /** TLS only: the client certificate, if one was presented. */
  certificate?: { verified: boolean; subjectCn?: string; error?: string };
  /** Set when the connection was let through only to be refused at CONNECT (a CONNACK return code says why). */
  refusal?: { limit: 'connect-attempts'; why: string };
  /** The will topic of the CONNECT, checked against the ACL before the client is admitted. */
  willTopic?: string;
}

/** How a listener hands a new connection to the broker; false when the address is refused. */
export interface ConnectionGate {
  /** Called as early as possible (before TLS or WebSocket handshakes): may this address connect now? */
  admit(address: string | undefined, listener: ListenerName): boolean;
  /** An admitted connection, ready for MQTT. */
  attach(stream: Duplex, info: ConnectionInfo): void;
}

export interface Listener {
  readonly name: ListenerName;
  readonly port: number;
  /** A URL a client on this machine can use. */
  readonly url: string;
  close(): Promise<void>;
}

export function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** A wildcard bind address is not one a client can connect to; loopback is. */
export function connectHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}
