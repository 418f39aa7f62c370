import type { Identity } from '../../broker/auth/identity.js';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';

/**
 * Issues credentials straight into the credential store of a data directory:
 * what `cosafe credentials add` does (tested through the CLI in hub.test.ts and
 * roles.test.ts), without a start of the CLI per identity, which takes minutes
 * on a loaded machine.
 */
export async function issueCredentials(dataDir: string, identities: Identity[]): Promise<{ username: string; password: string }[]> {
  const store = CredentialStore.open(credentialStorePath(dataDir));
  try {
    const out: { username: string; password: string }[] = [];
    for (const identity of identities) out.push({ username: identity.id, password: (await store.add(identity)).secret });
    return out;
  } finally {
    store.close();
  }
}
