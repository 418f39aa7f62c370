import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { COSAFE_BIN, runCosafe } from '../helpers/cosafe-cli.js';

/**
 * bin/cosafe.js runs the build in dist/ only while none of its inputs is newer
 * than it, and the sources through tsx otherwise: an edit must never run stale.
 * Tried on a package of its own (the real bin/cosafe.js beside a dist/ and a
 * cli/ that each say which they are), so the repository's own build is left
 * alone while other tests run it.
 */
const root = mkdtempSync(join(tmpdir(), 'cosafe-build-e2e-'));
const pkg = join(root, 'pkg');
const STARTED = Date.now() - 60_000;
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(path: string, text: string, mtimeMs = STARTED - 10_000): void {
  mkdirSync(dirname(join(pkg, path)), { recursive: true });
  writeFileSync(join(pkg, path), text);
  utimesSync(join(pkg, path), mtimeMs / 1000, mtimeMs / 1000);
}

beforeEach(() => {
  rmSync(pkg, { recursive: true, force: true });
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  copyFileSync(COSAFE_BIN, join(pkg, 'bin', 'cosafe.js'));
  // tsx, for the sources, from the repository's packages.
  symlinkSync(join(dirname(COSAFE_BIN), '..', 'node_modules'), join(pkg, 'node_modules'));
  writeFileSync(join(pkg, 'package.json'), '{ "type": "module" }\n');
  write('cli/main.ts', "const from: string = 'sources';\nconsole.log(from);\n");
  write('web/residents/index.html', '<p>page</p>\n');
  write('dist/cli/main.js', "console.log('build');\n");
  write('dist/build.json', JSON.stringify({ started: STARTED, inputs: ['cli/main.ts', 'web'] }));
});

function run(env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(pkg, 'bin', 'cosafe.js')], { env: { ...process.env, ...env } }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())));
  });
}

describe('which code bin/cosafe.js runs', () => {
  it('the build, while none of its inputs changed since it started', async () => {
    expect(await run()).toBe('build');
  });

  it('the sources, once a source file is edited after the build started', async () => {
    write('cli/main.ts', "console.log('sources');\n", Date.now());
    expect(await run()).toBe('sources');
  });

  it('the sources, once a file under an input directory changed', async () => {
    write('web/residents/index.html', '<p>new page</p>\n', Date.now());
    expect(await run()).toBe('sources');
  });

  it('the sources, once an input is gone', async () => {
    unlinkSync(join(pkg, 'web', 'residents', 'index.html'));
    rmSync(join(pkg, 'web'), { recursive: true });
    expect(await run()).toBe('sources');
  });

  it('the sources, without a build, or when asked to (COSAFE_FROM_SOURCES=1)', async () => {
    expect(await run({ COSAFE_FROM_SOURCES: '1' })).toBe('sources');
    unlinkSync(join(pkg, 'dist', 'build.json'));
    expect(await run()).toBe('sources');
  });
});

describe('cosafe --version', () => {
  it('says which it runs', async () => {
    const sources = await runCosafe(['--version'], 30_000, { COSAFE_FROM_SOURCES: '1' });
    expect(sources.stdout.trim()).toBe('0.1.0 (from the TypeScript sources)');
    const build = await runCosafe(['--version']);
    // npm test builds first (`npm run build` does it alone); a test run without a build runs the sources.
    expect(build.stdout.trim(), 'no current build in dist/: run `npm run build` (npm test does)').toMatch(/^0\.1\.0 \(build of \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
  });
});
