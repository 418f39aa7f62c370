import type { ProfileOf } from '../schema.js';
import { emptyOutcome, finishValue, type DecodeOutcome } from './decoded.js';

/**
 * Turns OPC-UA data values (by node id, as a subscription's monitored items
 * deliver them) into readings. Bad status codes from the server are passed as
 * `null` and become an error, not a reading. Never throws.
 */
export function decodeOpcuaValues(profile: ProfileOf<'opcua'>, values: ReadonlyMap<string, unknown> | Record<string, unknown>, time: number): DecodeOutcome {
  const out = emptyOutcome();
  const get = (id: string) => (values instanceof Map ? values.get(id) : (values as Record<string, unknown>)[id]);
  for (const point of profile.points) {
    const raw = get(point.read.nodeId);
    if (raw === undefined) continue;
    if (typeof raw === 'boolean' || (typeof raw === 'number' && Number.isFinite(raw))) {
      out.values.push(finishValue(point, raw, time));
    } else if (typeof raw === 'bigint') {
      out.values.push(finishValue(point, Number(raw), time));
    } else {
      out.errors.push(`${point.read.nodeId}: expected a number or boolean, got ${raw === null ? 'a bad status' : typeof raw}`);
    }
  }
  return out;
}
