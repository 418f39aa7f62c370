import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The pages' folder (web/), served as it is: plain HTML, CSS and browser ES modules, no build step. */
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
export const WEB_PREFIX = '/web/';
export const VENDOR_PREFIX = '/vendor/';

/** Browser modules of our dependencies the pages import, from node_modules, by the URL they are imported under. */
const require = createRequire(import.meta.url);
const VENDOR: Readonly<Record<string, { dir: string; file: string }>> = {
  'h3-js/h3-js.es.js': { dir: join(dirname(require.resolve('h3-js/package.json')), 'dist', 'browser'), file: 'h3-js.es.js' },
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

function hardening(set: (name: string, value: string) => unknown): void {
  set('content-security-policy', CONTENT_SECURITY_POLICY);
  set('x-content-type-options', 'nosniff');
  set('referrer-policy', 'no-referrer');
  set('cross-origin-opener-policy', 'same-origin');
  // The residents' page asks for the position itself; nothing else may.
  set('permissions-policy', 'geolocation=(self), camera=(), microphone=()');
}

/** Serves web/ under /web/ and the vendor modules under /vendor/, with the policy above on every file. */
export async function registerWebAssets(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: WEB_ROOT,
    prefix: WEB_PREFIX,
    index: ['index.html'],
    redirect: true,
    maxAge: 60_000,
    setHeaders: (reply) => hardening((n, v) => reply.header(n, v)),
  });
  app.get<{ Params: { '*': string } }>(`${VENDOR_PREFIX}*`, (req, reply: FastifyReply) => {
    const v = VENDOR[req.params['*']];
    if (!v) return reply.code(404).send({ error: 'not found' });
    hardening((n, value) => reply.header(n, value));
    return reply.sendFile(v.file, v.dir, { maxAge: 3_600_000 });
  });
  // Short addresses for people: the residents' page.
  for (const path of ['/', '/residents']) app.get(path, (_req, reply) => reply.redirect(`${WEB_PREFIX}residents/`, 302));
}
