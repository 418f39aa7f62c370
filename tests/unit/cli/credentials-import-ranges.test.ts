import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readImportFile } from '../../../cli/commands/credentials-import.js';
import { CosafeError } from '../../../core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'cosafe-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('credentials import with device ranges', () => {
  it('issues one device credential per device of a range, {id} filled in, each named by the range line', () => {
    const f = file('fleet.csv', 'role,site,device,topic\ndevice,bakery-12,panel-1,\ndevice,bakery-12,th-0998..th-1002,sensors/{id}/up\n');
    const { identities, where } = readImportFile(f);
    expect(identities.map((i) => i.id)).toEqual(['bakery-12.panel-1', 'bakery-12.th-0998', 'bakery-12.th-0999', 'bakery-12.th-1000', 'bakery-12.th-1001', 'bakery-12.th-1002']);
    expect(identities[3]).toMatchObject({ role: 'device', site: 'bakery-12', device: 'th-1000', topic: 'sensors/th-1000/up' });
    expect(where(0)).toBe(`${f}:2`);
    expect(where(5)).toBe(`${f}:3`);
  });

  it('refuses a range that is not one, naming its line, and issues nothing', () => {
    const f = file('bad.yaml', '- { role: device, site: bakery-12, device: th-0001..th-1 }\n- { role: device, site: bakery-12, device: th-10..th-2 }\n');
    let err: unknown;
    try {
      readImportFile(f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CosafeError);
    const details = (err as CosafeError).details.join('\n');
    expect(details).toContain(`${f} entry 1 device: th-0001..th-1 is not a range`);
    expect(details).toContain(`${f} entry 2 device: th-10..th-2 is not a range`);
  });
});
