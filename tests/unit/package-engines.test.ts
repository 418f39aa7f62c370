import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe('the locked dependencies and the Node versions the project supports', () => {
  it('locks no package that refuses the oldest Node line package.json admits (npm ci would warn EBADENGINE)', () => {
    const oldestLine = `${semver.minVersion(pkg.engines.node)!.major}.x`;
    const refusing = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .flatMap(([path, p]) => {
        const range = !Array.isArray(p.engines) ? p.engines?.node : undefined;
        return range && semver.validRange(range) && !semver.intersects(range, oldestLine) ? [`${path}@${p.version}: node ${range}`] : [];
      });
    expect(refusing, `package.json says node ${pkg.engines.node}`).toEqual([]);
  });
});
