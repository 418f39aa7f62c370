import type { Profile } from '../schema.js';
import type { DecodeOutcome } from './decoded.js';
import { decodeJsonPayload } from './json-payload.js';
import { decodeRegisters, type RegisterImage } from './modbus-registers.js';
import { decodeOpcuaValues } from './opcua-values.js';
import { decodeLine } from './serial-lines.js';

export type { DecodeOutcome, DecodedSignal, DecodedValue } from './decoded.js';

/**
 * Decodes a recorded input the way the transport's adapter would: a JSON payload
 * (mqtt), a text line (serial-lines), registers by table and address
 * (modbus-rtu), values by node id (opcua). Used for the samples in profiles.
 */
export function decodeSampleInput(profile: Profile, input: unknown, time: number): DecodeOutcome {
  switch (profile.transport) {
    case 'mqtt':
      return decodeJsonPayload(profile, typeof input === 'string' ? input : JSON.stringify(input), time);
    case 'serial-lines':
      // Recorded lines are read long after they were printed, in UTC so that a sample means the same everywhere.
      return typeof input === 'string' ? decodeLine(profile, input, time, { timeZone: 'UTC' }) : { values: [], signals: [], errors: ['sample: a serial-lines sample is one line of text'] };
    case 'modbus-rtu':
      return decodeRegisters(profile, toRegisterImage(input), time);
    case 'opcua':
      return decodeOpcuaValues(profile, (input ?? {}) as Record<string, unknown>, time);
  }
}

/** `{holding: {"0": 1234}}` (YAML keys are strings) into a register image. */
function toRegisterImage(input: unknown): RegisterImage {
  const image: RegisterImage = {};
  if (!input || typeof input !== 'object') return image;
  for (const table of ['holding', 'input', 'coil', 'discrete'] as const) {
    const t = (input as Record<string, unknown>)[table];
    if (t && typeof t === 'object') image[table] = new Map(Object.entries(t).map(([a, v]) => [Number(a), Number(v)]));
  }
  return image;
}
