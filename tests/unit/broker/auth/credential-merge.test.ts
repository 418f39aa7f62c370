import { describe, expect, it } from 'vitest';
import { mergeCredentialRows, type CredentialRow } from '../../../../broker/auth/credential-store.js';

/** The brokers of a cluster merge each other's copies of a credential: every order must end with the same row. */
const row = (over: Partial<CredentialRow>): CredentialRow => ({
  id: 's1.gw-1', role: 'gateway', site: 's1', gateway: 'gw-1', device: null, district: null, topic: null, prefix: null, sites: null,
  secret_hash: 'sha256$aaa', generation: 1, created_at: 1000, rotated_at: null, revoked_at: null, ...over,
});

describe('merging two copies of a credential', () => {
  const issued = row({});
  const rotated = row({ secret_hash: 'sha256$bbb', generation: 2, rotated_at: 2000 });
  const revoked = row({ revoked_at: 3000 });

  it('keeps a revocation whatever else the other copy says, the earliest one if both are revoked', () => {
    expect(mergeCredentialRows(rotated, revoked)).toMatchObject({ generation: 2, secret_hash: 'sha256$bbb', revoked_at: 3000 });
    expect(mergeCredentialRows(revoked, rotated)).toEqual(mergeCredentialRows(rotated, revoked));
    expect(mergeCredentialRows(row({ revoked_at: 5000 }), revoked).revoked_at).toBe(3000);
  });

  it('takes the later rotation with its secret', () => {
    expect(mergeCredentialRows(issued, rotated)).toEqual(rotated);
    expect(mergeCredentialRows(rotated, issued)).toEqual(rotated);
  });

  it('settles one id issued twice (same generation, two secrets) the same way in either order', () => {
    const other = row({ secret_hash: 'sha256$zzz', created_at: 1500 });
    expect(mergeCredentialRows(issued, other)).toEqual(mergeCredentialRows(other, issued));
  });
});
