import { parseAckTopic } from '../contract/topics.js';
import type { Identity } from './identity.js';

/**
 * A fire department's acknowledgement says who acknowledged; the payload's own
 * claim is not trustworthy, the broker's login is. So the broker writes the
 * publisher's identity into every message on `dispatch/<district>/acks/<eventId>`
 * (`identity: {id, role, district}`), over whatever the payload claimed, before
 * anyone else sees it. Returns the new payload, or an error for a payload that
 * is not a JSON object (the publish is then denied).
 */
export function stampAck(identity: Identity, topic: string, payload: Buffer | string): { payload: Buffer } | { error: string } | undefined {
  if (!parseAckTopic(topic)) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(payload.toString());
  } catch {
    return { error: 'an acknowledgement must be a JSON object' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { error: 'an acknowledgement must be a JSON object' };
  const district = (identity as { district?: string }).district;
  const stamped = { ...(body as Record<string, unknown>), identity: { id: identity.id, role: identity.role, ...(district ? { district } : {}) } };
  return { payload: Buffer.from(JSON.stringify(stamped)) };
}
