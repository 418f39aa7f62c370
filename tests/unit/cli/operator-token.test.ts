import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueOperatorToken, operatorTokenPath, OPERATOR_ID, readOperatorToken, withOperator } from '../../../cli/operator-token.js';
import type { CredentialVerifier } from '../../../cloud-sync/http/http-auth.js';

const store: CredentialVerifier = {
  verify: async (id, secret) => (id === 'anna' && secret === 'right' ? { principal: { id, role: 'owner', sites: ['bakery-12'] }, generation: 1 } : undefined),
  current: (id) => (id === 'anna' ? { generation: 1, revoked: false } : undefined),
  identity: () => undefined,
};

describe("the hub operator's token", () => {
  it('is written for this run only, readable by its owner only, and removed at stop', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-operator-'));
    const first = issueOperatorToken(dir);
    expect(statSync(operatorTokenPath(dir)).mode & 0o777).toBe(0o600);
    expect(readOperatorToken(dir)).toBe(`${OPERATOR_ID}:${first.secret}`);
    // A hub started since (after a crash of this one) wrote its own: the old one's stop leaves it.
    const second = issueOperatorToken(dir);
    expect(second.secret).not.toBe(first.secret);
    first.remove();
    expect(readOperatorToken(dir)).toBe(`${OPERATOR_ID}:${second.secret}`);
    second.remove();
    expect(readOperatorToken(dir)).toBeUndefined();
  });

  it("logs in as this run's admin with its secret, refuses any other, and leaves every other identity to the store", async () => {
    const v = withOperator(store, 'the-secret');
    expect(await v.verify(OPERATOR_ID, 'the-secret')).toEqual({ principal: { id: OPERATOR_ID, role: 'admin' }, generation: 0 });
    expect(await v.verify(OPERATOR_ID, 'the-secreT')).toBeUndefined();
    expect(await v.verify(OPERATOR_ID, '')).toBeUndefined();
    expect(await v.verify('anna', 'right')).toMatchObject({ principal: { role: 'owner' } });
    expect(await v.verify('anna', 'the-secret')).toBeUndefined();
    // No client certificate names the operator.
    expect(v.identity(OPERATOR_ID)).toBeUndefined();
    expect(v.current(OPERATOR_ID)).toEqual({ generation: 0, revoked: false });
  });
});
