import type { DataPoint, Profile } from '../schema.js';

/** One value decoded from a device payload, before the edge adds who sent it. */
export interface DecodedValue {
  metric: DataPoint['metric'];
  unit: string;
  value: number;
  time: number;
  quality: 'good' | 'bad';
  /** Why the quality is bad (out of range), for the counter and the log. */
  note?: string;
}

export interface DecodeOutcome {
  values: DecodedValue[];
  /** Problems that cost a value or the whole payload: `path: why`. */
  errors: string[];
}

const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * Decodes an MQTT device's own JSON payload with its profile. Never throws:
 * whatever the device sends, the caller gets values and a list of errors.
 */
export function decodeJsonPayload(profile: Profile, payload: Buffer | string, receivedAt: number): DecodeOutcome {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_PAYLOAD_BYTES) return { values: [], errors: [`payload: ${size} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`] };
  let doc: unknown;
  try {
    doc = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { values: [], errors: [`payload: not JSON (${(err as Error).message})`] };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { values: [], errors: ['payload: not a JSON object'] };

  const errors: string[] = [];
  let time = receivedAt;
  if (profile.time) {
    const t = readPath(doc, profile.time);
    if (typeof t === 'number' && Number.isInteger(t) && t > 0) time = t;
    else if (t !== undefined) errors.push(`${profile.time}: not an epoch-milliseconds timestamp, used the receive time`);
  }

  const values: DecodedValue[] = [];
  for (const point of profile.points) {
    const raw = readPath(doc, point.json);
    // A device may leave out a field it has nothing new for; that is not an error.
    if (raw === undefined) continue;
    let value: number;
    if (point.type === 'boolean') {
      if (typeof raw !== 'boolean') {
        errors.push(`${point.json}: expected true or false, got ${JSON.stringify(raw).slice(0, 40)}`);
        continue;
      }
      value = raw ? 1 : 0;
    } else {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) {
        errors.push(`${point.json}: expected a number, got ${JSON.stringify(raw).slice(0, 40)}`);
        continue;
      }
      value = raw * point.scale + point.offset;
    }
    // Kept, not dropped and not passed as good: the out-of-range value is evidence
    // (a failing sensor) that a person should be able to see.
    if (point.range && (value < point.range[0] || value > point.range[1])) {
      values.push({ metric: point.metric, unit: point.unit, value, time, quality: 'bad', note: `outside ${point.range[0]}..${point.range[1]}` });
    } else {
      values.push({ metric: point.metric, unit: point.unit, value, time, quality: 'good' });
    }
  }
  if (values.length === 0 && errors.length === 0) {
    errors.push(`payload: none of the profile's fields (${profile.points.map((p) => p.json).join(', ')}) is present`);
  }
  return { values, errors };
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
