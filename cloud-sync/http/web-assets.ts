import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { access } from './access.js';

/** The pages' folder (web/), served as it is: plain HTML, CSS and browser ES modules, no build step. */
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
export const WEB_PREFIX = '/web/';
export const VENDOR_PREFIX = '/vendor/';

/** Browser modules of our dependencies the pages import, from node_modules, by the URL they are imported under: no CDN, no network at run time. */
const require = createRequire(import.meta.url);
const uplotDist = join(dirname(require.resolve('uplot/package.json')), 'dist');
const VENDOR: Readonly<Record<string, { dir: string; file: string }>> = {
  'h3-js/h3-js.es.js': { dir: join(dirname(require.resolve('h3-js/package.json')), 'dist', 'browser'), file: 'h3-js.es.js' },
  'uplot/uPlot.esm.js': { dir: uplotDist, file: 'uPlot.esm.js' },
  'uplot/uPlot.min.css': { dir: uplotDist, file: 'uPlot.min.css' },
};

/**
 * A strict Content-Security-Policy (CSP Level 3): scripts, styles and
 * connections from the hub itself only, no inline script or style, no
 * frames, no plugins; so a value that slipped through as HTML still could not
 * run. With it the usual hardening headers.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function hardening(set: (name: string, value: string) => unknown, tls: boolean): void {
  set('content-security-policy', CONTENT_SECURITY_POLICY);
  set('x-content-type-options', 'nosniff');
  set('referrer-policy', 'no-referrer');
  set('cross-origin-opener-policy', 'same-origin');
  set('cross-origin-resource-policy', 'same-origin');
  // The residents' page asks for the position itself; nothing else may.
  set('permissions-policy', 'geolocation=(self), camera=(), microphone=()');
  // Over TLS, the browser is told to come back only over TLS (RFC 6797).
  if (tls) set('strict-transport-security', 'max-age=31536000');
}

/** Serves web/ under /web/ and the vendor modules under /vendor/, with the policy above on every file; short addresses for people. */
export async function registerWebAssets(app: FastifyInstance, o: { tls: boolean }): Promise<void> {
  await app.register(fastifyStatic, {
    root: WEB_ROOT,
    prefix: WEB_PREFIX,
    index: ['index.html'],
    redirect: true,
    // The pages change with the hub: revalidated at each load, so a new version is never mixed with an old one.
    cacheControl: true,
    maxAge: 0,
    setHeaders: (reply) => hardening((n, v) => reply.header(n, v), o.tls),
  });
  app.get<{ Params: { '*': string } }>(`${VENDOR_PREFIX}*`, { config: access('public') }, (req, reply: FastifyReply) => {
    const v = VENDOR[req.params['*']];
    if (!v) return reply.code(404).send({ error: 'not found' });
    hardening((n, value) => reply.header(n, value), o.tls);
    return reply.sendFile(v.file, v.dir, { maxAge: 3_600_000 });
  });
  // Short addresses for people: the residents' page (also the hub's front page), sign-in, the owners' page, the console.
  const pages = [['/', 'residents'], ['/residents', 'residents'], ['/login', 'login'], ['/owner', 'owner'], ['/console', 'console']] as const;
  for (const [path, page] of pages) app.get(path, { config: access('public') }, (_req, reply) => reply.redirect(`${WEB_PREFIX}${page}/`, 302));
}
