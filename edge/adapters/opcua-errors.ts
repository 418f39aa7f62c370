import type { ErrorCode } from '../../core/errors.js';

/** The phase of building a connection in which something failed. */
export type OpcuaPhase = 'connect' | 'session' | 'subscription';

export interface OpcuaFailure {
  /** Counter in `health().errors`. */
  kind: OpcuaPhase;
  code: ErrorCode;
  /** What a person reads: what failed, why, what to do. */
  message: string;
}

/**
 * Turns an error of node-opcua into what the operator needs: which code, and
 * what to do. node-opcua reports most failures as an Error whose message holds
 * the OPC-UA status code name (OPC-UA Part 4 §7.34, Part 6 §7.1.5), so that is
 * what is matched.
 */
export function describeOpcuaFailure(phase: OpcuaPhase, err: unknown, where: { endpoint: string; pkiDir: string }): OpcuaFailure {
  const text = err instanceof Error ? err.message : String(err);
  // node-opcua wraps the socket error in a paragraph of advice; the socket error is what tells.
  const first = /Err = \((.+)\)/.exec(text)?.[1] ?? text.split('\n')[0]!.trim();
  const has = (re: RegExp) => re.test(text);

  if (has(/Certificate verification failed|BadCertificateUntrusted|BadCertificateChainIncomplete/) && phase === 'connect') {
    return {
      kind: 'connect',
      code: 'COSAFE_ERR_OPCUA_SECURITY',
      message: `the certificate of the server ${where.endpoint} is not trusted by the gateway: check it, then move it from ${where.pkiDir}/rejected/ to ${where.pkiDir}/trusted/certs/ (${first})`,
    };
  }
  if (has(/BadSecurityChecksFailed|BadCertificate|BadNoValidCertificates|BadSecurityPolicyRejected|BadSecurityModeRejected|BadApplicationSignatureInvalid/)) {
    return {
      kind: phase,
      code: 'COSAFE_ERR_OPCUA_SECURITY',
      message: `the server ${where.endpoint} refused the secure channel: it must offer the configured securityMode/securityPolicy and trust the gateway's certificate (${where.pkiDir}/own/certs/) (${first})`,
    };
  }
  if (has(/BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid|BadUserSignatureInvalid/)) {
    return {
      kind: 'session',
      code: 'COSAFE_ERR_OPCUA_SESSION',
      message: `the server ${where.endpoint} refused the user: check opcua.username and opcua.password (or whether it allows anonymous sessions) (${first})`,
    };
  }
  if (has(/Cannot find an Endpoint matching|endpoint does not exist|BadTcpEndpointUrlInvalid/i)) {
    return {
      kind: 'connect',
      code: 'COSAFE_ERR_OPCUA_SECURITY',
      message: `the server ${where.endpoint} offers no endpoint with the configured securityMode/securityPolicy (${first})`,
    };
  }
  if (phase === 'connect') {
    return { kind: 'connect', code: 'COSAFE_ERR_OPCUA_CONNECT', message: `cannot connect to ${where.endpoint}: ${first}` };
  }
  if (phase === 'session') {
    return { kind: 'session', code: 'COSAFE_ERR_OPCUA_SESSION', message: `the server ${where.endpoint} did not open a session: ${first}` };
  }
  return { kind: 'subscription', code: 'COSAFE_ERR_OPCUA_SUBSCRIPTION', message: `the server ${where.endpoint} did not create the subscription: ${first}` };
}
