import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { OpcuaConnectionConfig } from '../../core/config.js';

export type OpcuaLib = typeof import('node-opcua-client');

/** Timings of one endpoint's connection; tests shorten them. */
export interface OpcuaTiming {
  /** First retry delay after a failure; doubles up to `maxDelayMs` (node-opcua's reconnection uses the same pair). */
  initialDelayMs: number;
  maxDelayMs: number;
  /** The subscription's keep-alive when nothing changes (OPC-UA Part 4 §5.13.1.1: maxKeepAliveCount x publishingInterval). */
  keepAliveMs: number;
  /**
   * Connected, yet no publish response (data or keep-alive) for this long: the
   * connection is dead even if the socket has not noticed (a half-open TCP
   * connection after a cable or a router fails), so it is rebuilt.
   */
  staleAfterMs: number;
  /** After node-opcua got a channel back, it must restore the session and subscription within this. */
  repairTimeoutMs: number;
  /** Bound on closing a session: a dead server never answers. */
  closeTimeoutMs: number;
}

/**
 * A BMS is on the site's own network: retrying every 10 s costs nothing, and a
 * waterflow alarm after a BMS restart should not wait for a 30 s backoff.
 */
export const defaultOpcuaTiming: OpcuaTiming = {
  initialDelayMs: 1000,
  maxDelayMs: 10_000,
  keepAliveMs: 5000,
  staleAfterMs: 20_000,
  repairTimeoutMs: 30_000,
  closeTimeoutMs: 3000,
};

/** Exponential backoff with a cap: initial, 2x, 4x, ... max. */
export function backoffDelay(attempt: number, timing: Pick<OpcuaTiming, 'initialDelayMs' | 'maxDelayMs'>): number {
  return Math.min(timing.maxDelayMs, timing.initialDelayMs * 2 ** Math.min(attempt, 20));
}

/** The security policy in force: the configured one, else the one that goes with the mode. */
export function policyOf(c: OpcuaConnectionConfig): 'None' | 'Basic256Sha256' {
  return c.securityPolicy ?? (c.securityMode === 'None' ? 'None' : 'Basic256Sha256');
}

/** The ApplicationUri of a certificate: the URI of its subjectAltName (OPC-UA Part 6 §6.2.2). */
export async function applicationUriOf(certificateFile: string): Promise<string | undefined> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readFile(certificateFile));
  } catch (err) {
    throw new Error(`cannot read the client certificate ${certificateFile}: ${(err as Error).message}`);
  }
  return /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
}

export const formatSeconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
