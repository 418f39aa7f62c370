import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Departments } from '../../../cloud-sync/dispatch/departments.js';
import { may } from '../../../cloud-sync/http/permissions.js';
import { readSitesFile } from '../../../cloud-sync/registry/site-import.js';
import { SiteStore } from '../../../cloud-sync/registry/site-store.js';
import { buildConfig } from '../../../core/config.js';
import { CosafeError } from '../../../core/errors.js';

const file = (name: string, text: string) => {
  const p = join(mkdtempSync(join(tmpdir(), 'cosafe-sites-')), name);
  writeFileSync(p, text);
  return p;
};
const problems = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as CosafeError).details;
  }
  throw new Error('expected an error');
};

describe('the site registry', () => {
  it('imports a CSV of sites and reports every bad row with its line, importing none of them then', () => {
    const ok = readSitesFile(file('s.csv', 'id,name,address,lat,lon,district,hazards,contact_name,contact_phone\nbakery-12,Bakery,"Main St 1, Town",52.5,13.4,north,LPG tank;flour,Anna,+49 30 1\n'));
    expect(ok).toEqual([expect.objectContaining({ id: 'bakery-12', address: 'Main St 1, Town', hazards: ['LPG tank', 'flour'], contacts: [{ name: 'Anna', phone: '+49 30 1' }] })]);
    expect(problems(() => readSitesFile(file('s.csv', 'id,name,address,lat,lon,district\na/b,X,Y,91,13,north\nok,X,Y,52,13,\n')))).toEqual([
      expect.stringMatching(/^.*s\.csv:2 id: /),
      expect.stringMatching(/^.*s\.csv:2 location\.lat: /),
      expect.stringMatching(/^.*s\.csv:3 district: /),
    ]);
  });

  it('imports YAML with line numbers in its errors, and refuses a site listed twice', () => {
    const yaml = 'sites:\n  - {id: a, name: A, address: X, location: {lat: 1, lon: 2}, district: n}\n  - {id: a, name: B, address: Y, location: {lat: 1, lon: 2}, district: n}\n';
    expect(problems(() => readSitesFile(file('s.yaml', yaml)))).toEqual([expect.stringContaining('listed twice')]);
    expect(problems(() => readSitesFile(file('s.yaml', 'sites:\n  - {id: a, name: A, address: X, location: {lat: 1, lon: 2}}\n')))).toEqual([expect.stringMatching(/s\.yaml:2 sites\[0\]\.district: /)]);
  });

  it('keeps control characters out of what goes into CAP messages and pages', () => {
    expect(problems(() => SiteStore.parse({ id: 'a', name: 'A\u0007', address: 'X', location: { lat: 1, lon: 2 }, district: 'n' }))).toEqual([expect.stringContaining('name: must not contain control characters')]);
  });
});

describe('routing and permissions', () => {
  const config = buildConfig({
    cloudSync: {
      fireDepartments: [
        { id: 'fd-n', district: 'north', channels: [{ type: 'mqtt' }], url: 'http://x.example/a', secret: 'whsec_AAAA' },
        { id: 'fd-s', district: 'south', url: 'http://x.example/b', secret: 'whsec_AAAA', classes: ['fire', 'trouble'] },
        { id: 'duty', primary: false, url: 'http://x.example/c', secret: 'whsec_AAAA' },
      ],
    },
  });
  const d = new Departments(config.cloudSync.fireDepartments, config.cloudSync.alarms);

  it("sends an alarm to its district's departments that take its class, and never to nobody", () => {
    expect(d.route('north', 'fire').departments.map((x) => x.id)).toEqual(['fd-n']);
    expect(d.route('south', 'trouble').departments.map((x) => x.id)).toEqual(['fd-s']);
    expect(d.route('east', 'fire')).toMatchObject({ fallback: 'unattended', departments: [{ id: 'fd-n' }, { id: 'fd-s' }] });
    expect(d.route(null, 'fire')).toMatchObject({ fallback: 'unregistered' });
  });

  it('keeps the old single-webhook config working as one webhook channel', () => {
    expect(config.cloudSync.fireDepartments[1]!.channels).toEqual([{ type: 'webhook', url: 'http://x.example/b', secret: 'whsec_AAAA' }]);
  });

  it('lets a fire department act on its own district only, an admin on all, and nobody else on anything', () => {
    const fd = { id: 'fd', role: 'fire-department' as const, district: 'north' };
    expect(may(fd, 'alarms.ack', 'north')).toBe(true);
    expect(may(fd, 'alarms.ack', 'south')).toBe(false);
    expect(may(fd, 'alarms.shelve', 'north')).toBe(false);
    expect(may(fd, 'alarms.ack', null)).toBe(true);
    expect(may({ id: 'ops', role: 'admin' }, 'alarms.shelve', 'south')).toBe(true);
    for (const role of ['gateway', 'device', 'service', 'agency'] as const) expect(may({ id: 'x', role }, 'alarms.read', 'north')).toBe(false);
  });

  it('refuses an escalation step that names a department nobody configured', () => {
    expect(() => buildConfig({ cloudSync: { fireDepartments: [], alarms: { districts: { north: { escalation: [{ notify: ['ghost'] }] } } } } })).toThrow(CosafeError);
  });
});
