import type { ProfileOf } from '../schema.js';
import { emptyOutcome, finishValue, type DecodeOutcome, type DecodedValue } from './decoded.js';

const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * Decodes an MQTT device's own JSON payload with its profile. Never throws:
 * whatever the device sends, the caller gets values and a list of errors.
 */
export function decodeJsonPayload(profile: ProfileOf<'mqtt'>, payload: Buffer | string, receivedAt: number): DecodeOutcome {
  const out = emptyOutcome();
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_PAYLOAD_BYTES) return { ...out, errors: [`payload: ${size} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`] };
  let doc: unknown;
  try {
    doc = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ...out, errors: [`payload: not JSON (${(err as Error).message})`] };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { ...out, errors: ['payload: not a JSON object'] };

  let time = receivedAt;
  if (profile.time) {
    const t = readPath(doc, profile.time);
    if (typeof t === 'number' && Number.isInteger(t) && t > 0) time = t;
    else if (t !== undefined) out.errors.push(`${profile.time}: not an epoch-milliseconds timestamp, used the receive time`);
  }

  const values: DecodedValue[] = out.values;
  for (const point of profile.points) {
    const raw = readPath(doc, point.read.json);
    // A device may leave out a field it has nothing new for; that is not an error.
    if (raw === undefined) continue;
    if (point.type === 'boolean' ? typeof raw !== 'boolean' : typeof raw !== 'number' || !Number.isFinite(raw)) {
      out.errors.push(`${point.read.json}: expected ${point.type === 'boolean' ? 'true or false' : 'a number'}, got ${JSON.stringify(raw).slice(0, 40)}`);
      continue;
    }
    values.push(finishValue(point, raw as number | boolean, time));
  }
  if (values.length === 0 && out.errors.length === 0) {
    out.errors.push(`payload: none of the profile's fields (${profile.points.map((p) => p.read.json).join(', ')}) is present`);
  }
  return out;
}

/** `a.b[0].c` into a parsed JSON document; `undefined` when any step is missing. */
export function readPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const step of path.split(/\.|(?=\[)/)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const index = /^\[(\d+)\]$/.exec(step);
    cur = index ? (Array.isArray(cur) ? cur[Number(index[1])] : undefined) : Object.hasOwn(cur, step) ? (cur as Record<string, unknown>)[step] : undefined;
  }
  return cur;
}
