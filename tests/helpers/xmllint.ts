import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBinary, run } from './processes.js';

/** The official OASIS CAP 1.2 schema (see tests/fixtures/cap/README.md). */
export const CAP_XSD = fileURLToPath(new URL('../fixtures/cap/CAP-v1.2.xsd', import.meta.url));

/**
 * Validates a CAP message with xmllint (Debian's libxml2-utils) against the
 * OASIS schema; throws with xmllint's words when it is not valid.
 */
export async function assertValidCap(xml: string): Promise<void> {
  const xmllint = requireBinary('xmllint', 'libxml2-utils');
  const dir = mkdtempSync(join(tmpdir(), 'cosafe-cap-'));
  try {
    const file = join(dir, 'alert.xml');
    writeFileSync(file, xml);
    const r = await run(xmllint, ['--noout', '--schema', CAP_XSD, file]);
    if (r.code !== 0) throw new Error(`CAP message is not valid against CAP-v1.2.xsd:\n${r.stderr}\n${xml}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
