import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CredentialVerifier } from '../cloud-sync/http/http-auth.js';
import { openPrivateFile } from '../core/private-files.js';

/**
 * The hub operator's own login to the HTTP API, for `cosafe status` and
 * `cosafe readings` on the hub's machine: the hub writes a fresh secret to
 * `<dataDir>/http-operator.token` (0600, in the 0700 data directory) each time
 * it starts, and removes it when it stops; it is valid for that run only. It
 * gives nothing a person who can read the data directory does not already
 * have: that person reads every database there, and can issue credentials
 * (`cosafe credentials add`). Like Jupyter's token file or Docker's socket.
 */
export const OPERATOR_ID = '@operator';

export const operatorTokenPath = (dataDir: string): string => join(dataDir, 'http-operator.token');

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Writes a new token for this run; `remove` deletes it (at stop). */
export function issueOperatorToken(dataDir: string): { secret: string; remove(): void } {
  const secret = randomBytes(32).toString('base64url');
  const path = operatorTokenPath(dataDir);
  const fd = openPrivateFile(path, 'w');
  try {
    writeSync(fd, `${OPERATOR_ID}:${secret}\n`);
  } finally {
    closeSync(fd);
  }
  return {
    secret,
    remove() {
      // Only our own: a hub started since (same data directory) has written its own.
      if (readOperatorToken(dataDir) === `${OPERATOR_ID}:${secret}`) rmSync(path, { force: true });
    },
  };
}

/** The running hub's operator token (`@operator:<secret>`), if this user can read it. */
export function readOperatorToken(dataDir: string): string | undefined {
  try {
    const token = readFileSync(operatorTokenPath(dataDir), 'utf8').trim();
    return token.startsWith(`${OPERATOR_ID}:`) ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The credential store's verifier, which also knows this run's operator (an admin that lives as long as the process). */
export function withOperator(verifier: CredentialVerifier, secret: string): CredentialVerifier {
  const expected = digest(secret);
  const operator = { principal: { id: OPERATOR_ID, role: 'admin' as const }, generation: 0 };
  return {
    async verify(id, given) {
      if (id !== OPERATOR_ID) return verifier.verify(id, given);
      return timingSafeEqual(digest(given), expected) ? operator : undefined;
    },
    current: (id) => (id === OPERATOR_ID ? { generation: 0, revoked: false } : verifier.current(id)),
    // No certificate names the operator: it logs in with its token only.
    identity: (id) => (id === OPERATOR_ID ? undefined : verifier.identity(id)),
  };
}
