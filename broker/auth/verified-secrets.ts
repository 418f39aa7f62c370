import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets this process has verified against the credential store's hash,
 * remembered for the life of the process, so that a device reconnecting (a
 * network blip, a gateway restart, a fleet after a Wi-Fi outage) costs one row
 * read and one HMAC. For the SHA-256 of what the store issues now that saves
 * little; for the scrypt hashes of a store written before (16 MiB and ~40 ms
 * each, until their first login re-hashes them) it is what lets a thousand
 * devices behind a reconnecting NAT log in again in well under a second.
 *
 * What is kept is not the secret but an HMAC of it under a key that exists only
 * in this process's memory, bound to the store file, the identity, the
 * credential's generation and its stored hash. The caller (CredentialStore)
 * reads the row first and asks with what it says *now*, so:
 *
 * - a rotation raises the generation and replaces the hash: the remembered
 *   entry no longer matches, and the old secret is checked against the new
 *   hash, which refuses it;
 * - a revocation is seen on the row before this is asked at all.
 *
 * Both take effect at once, remembered or not. One entry per identity (a new
 * generation replaces it), so memory stays bounded by the credentials that
 * logged in. Nothing of this reaches the disk.
 *
 * One per process and store: the broker and the HTTP API (which shares the
 * broker's credentials) use the same instance (cli/compose.ts).
 */
export class VerifiedSecrets {
  private readonly key = randomBytes(32);
  private readonly byId = new Map<string, Buffer>();

  /** Was this secret verified before, for this store, identity, generation and stored hash? */
  has(entry: RememberedCredential, secret: string): boolean {
    const known = this.byId.get(entry.id);
    return known !== undefined && timingSafeEqual(known, this.digest(entry, secret));
  }

  /** After the stored hash said yes. */
  remember(entry: RememberedCredential, secret: string): void {
    this.byId.set(entry.id, this.digest(entry, secret));
  }

  forget(id: string): void {
    this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  private digest(e: RememberedCredential, secret: string): Buffer {
    // NUL separates the fields: none of them may contain one (ids are patterned, hashes base64, secrets printable).
    return createHmac('sha256', this.key).update(`${e.store}\0${e.id}\0${e.generation}\0${e.hash}\0${secret}`).digest();
  }
}

/** What the store says of a credential now, that a remembered secret must match. */
export interface RememberedCredential {
  /** The store file. */
  store: string;
  id: string;
  generation: number;
  /** The stored hash (changes with every rotation, and when a scrypt hash is re-hashed). */
  hash: string;
}
