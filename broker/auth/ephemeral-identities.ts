import { createHash, timingSafeEqual } from 'node:crypto';
import { Identity } from './identity.js';
import { newSecret } from './secret-hash.js';

/**
 * Identities that live only as long as the process: the composition root gives
 * one to each part it runs next to the broker (the gateway, cloud-sync, the
 * demo's simulated sensors), so the embedded default needs no setup and still
 * goes through the same authentication and ACL as everyone else. Their ids
 * start with "@", which a stored credential's id cannot, so they never collide.
 * Nothing is written anywhere; the secret is kept only as a SHA-256 digest.
 */
export class EphemeralIdentities {
  private readonly byId = new Map<string, { identity: Identity; digest: Buffer }>();

  issue(identity: Identity): { username: string; password: string } {
    if (!identity.id.startsWith('@')) throw new Error(`an ephemeral identity id must start with "@", not "${identity.id}"`);
    const parsed = Object.freeze(Identity.parse(identity));
    const password = newSecret();
    // A random 256-bit secret needs no slow hash: nobody can guess it, and it never leaves memory.
    this.byId.set(parsed.id, { identity: parsed, digest: digest(password) });
    return { username: parsed.id, password };
  }

  isEphemeral(id: string): boolean {
    return id.startsWith('@');
  }

  find(id: string): Identity | undefined {
    return this.byId.get(id)?.identity;
  }

  verify(id: string, secret: string): Identity | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    return timingSafeEqual(entry.digest, digest(secret)) ? entry.identity : undefined;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
