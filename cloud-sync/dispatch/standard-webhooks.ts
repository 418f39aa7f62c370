import { createHmac } from 'node:crypto';

/**
 * Signing as the Standard Webhooks spec says: the signed content is
 * `${id}.${timestamp}.${body}`, HMAC-SHA256 with the secret's base64 bytes
 * (after the `whsec_` prefix), sent as `v1,<base64>`.
 */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`,
  };
}
