import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Sends a body that caches and proxies may keep for `maxAgeSeconds`
 * (RFC 9111 §5.2.2.1), with a strong ETag of its bytes; a request whose
 * If-None-Match names it gets 304 Not Modified without the body (RFC 9110
 * §13.1.2), so a feed poller that polls every few seconds costs little.
 */
export function sendCacheable(req: FastifyRequest, reply: FastifyReply, body: string, contentType: string, maxAgeSeconds: number): FastifyReply {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  void reply.header('etag', etag).header('cache-control', `public, max-age=${maxAgeSeconds}`).header('vary', 'accept-encoding');
  if (matches(req.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.type(contentType).send(body);
}

function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
