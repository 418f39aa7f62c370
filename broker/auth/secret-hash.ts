import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * How the credential store keeps secrets: never the secret, a one-way hash of
 * it in a self-describing string, so that schemes can change without breaking
 * the hashes already stored.
 *
 * - `sha256$<digest>`: secrets cosafe issues itself (`newSecret`, 256 random
 *   bits). NIST SP 800-63B tells the two kinds of secret apart: a memorized
 *   secret, one a person chose, must be salted and hashed with a costly key
 *   derivation function (§5.1.1.2), because a dictionary guesses it; a
 *   high-entropy secret of at least 112 bits needs only an approved one-way
 *   function (§5.1.2.2, look-up secrets), because there is nothing to guess:
 *   2^256 preimages are out of reach however fast each try is (GitHub and
 *   Stripe keep API tokens the same way). A salt adds nothing either: no two
 *   secrets are the same, and no table of precomputed hashes covers 2^256 of
 *   them. Nor a pepper (a key kept in a file beside the store): whoever copies
 *   the data directory copies the key with it, and a restored store without
 *   its key would lock out every device of a fire alarm system. It verifies in
 *   a microsecond, so a fleet logging in after a hub restart costs no scrypt.
 * - `scrypt$N$r$p$salt$hash`: what the store wrote before, and what a secret a
 *   person chose gets (no command takes one today): still verified; an issued
 *   secret verified against it is re-hashed as sha256 (CredentialStore.verify).
 */
const PARAMS = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const SECRET_PREFIX = 'cosafe_';
/** `cosafe_` and 32 random bytes in base64url. */
const ISSUED = /^cosafe_[A-Za-z0-9_-]{43}$/;

/** A new secret: 32 random bytes, base64url, with a prefix that makes a leaked one easy to grep for. */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** Whether a secret has the form `newSecret` gives, 256 random bits: only those are kept as sha256. */
export function isIssuedSecret(secret: string): boolean {
  return ISSUED.test(secret);
}

/** The stored form of a secret cosafe issued (SP 800-63B §5.1.2.2): SHA-256, tagged. */
export function hashIssuedSecret(secret: string): string {
  if (!isIssuedSecret(secret)) throw new Error('hashIssuedSecret takes secrets of newSecret only: a chosen secret needs hashChosenSecret (scrypt)');
  return `sha256$${sha256(secret).toString('base64url')}`;
}

/** The stored form of a secret a person chose (SP 800-63B §5.1.1.2): salted scrypt. */
export async function hashChosenSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(secret, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export type SecretScheme = 'sha256' | 'scrypt';

export function schemeOf(stored: string): SecretScheme | undefined {
  const tag = stored.slice(0, stored.indexOf('$'));
  return tag === 'sha256' || tag === 'scrypt' ? tag : undefined;
}

/** Compares in constant time, in the scheme the stored hash names; a malformed stored hash never matches. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts[0] === 'sha256' && parts.length === 2) {
    const expected = Buffer.from(parts[1]!, 'base64url');
    return expected.length === KEY_BYTES && timingSafeEqual(sha256(secret), expected);
  }
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length !== KEY_BYTES) return false;
  const actual = await derive(secret, salt, { N, r, p });
  return timingSafeEqual(actual, expected);
}

/**
 * A hash no secret matches, to verify against when the username is unknown or
 * revoked: it costs what a wrong secret for a known one costs (sha256, the
 * scheme of what the store issues), so the answer time does not tell an
 * attacker which usernames exist.
 */
export const DECOY_HASH = `sha256$${Buffer.alloc(KEY_BYTES).toString('base64url')}`;

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function derive(secret: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    // The async form runs on libuv's thread pool: a burst of logins does not stall the broker's event loop.
    scrypt(secret, salt, KEY_BYTES, { ...params, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}
