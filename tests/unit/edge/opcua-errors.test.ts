import { describe, expect, it } from 'vitest';
import { describeOpcuaFailure } from '../../../edge/adapters/opcua-errors.js';
import { backoffDelay } from '../../../edge/adapters/opcua-settings.js';

const where = { endpoint: 'opc.tcp://bms:4840', pkiDir: '/var/lib/cosafe/opcua-pki' };

describe('OPC-UA failures, as the operator reads them', () => {
  it('names the socket error of a refused connection, not the library advice around it', () => {
    const err = new Error('The connection cannot be established with server opc.tcp://bms:4840 .\nPlease check that the server is up and running.\nErr = (connect ECONNREFUSED 10.0.0.5:4840)');
    expect(describeOpcuaFailure('connect', err, where)).toEqual({ kind: 'connect', code: 'COSAFE_ERR_OPCUA_CONNECT', message: 'cannot connect to opc.tcp://bms:4840: connect ECONNREFUSED 10.0.0.5:4840' });
  });

  it('says where to trust an untrusted server certificate', () => {
    const f = describeOpcuaFailure('connect', new Error('server Certificate verification failed with err BadCertificateUntrusted (0x801a0000)'), where);
    expect(f.code).toBe('COSAFE_ERR_OPCUA_SECURITY');
    expect(f.message).toContain('move it from /var/lib/cosafe/opcua-pki/rejected/ to /var/lib/cosafe/opcua-pki/trusted/certs/');
  });

  it('tells a refused user from a session the server could not open', () => {
    expect(describeOpcuaFailure('session', new Error('BadUserAccessDenied (0x801f0000)'), where)).toMatchObject({ kind: 'session', code: 'COSAFE_ERR_OPCUA_SESSION' });
    expect(describeOpcuaFailure('session', new Error('BadUserAccessDenied'), where).message).toContain('check opcua.username and opcua.password');
    expect(describeOpcuaFailure('session', new Error('BadTooManySessions'), where).message).toBe('the server opc.tcp://bms:4840 did not open a session: BadTooManySessions');
    expect(describeOpcuaFailure('subscription', new Error('BadTooManySubscriptions'), where)).toMatchObject({ kind: 'subscription', code: 'COSAFE_ERR_OPCUA_SUBSCRIPTION' });
  });
});

describe('backoff', () => {
  it('doubles from the first delay up to the cap', () => {
    const timing = { initialDelayMs: 1000, maxDelayMs: 30_000 };
    expect([0, 1, 2, 3, 4, 5, 6, 100].map((a) => backoffDelay(a, timing))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});
