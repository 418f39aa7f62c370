/*
 * Modbus RTU framing (Modbus over Serial Line V1.02 §2.5): address, PDU, CRC-16
 * little-endian. Only the read functions the profiles use.
 *
 * Why not a Modbus library: the well-kept one for Node (modbus-serial) owns the
 * port and runs one transaction with one timeout; cosafe needs a scheduler per
 * bus with its own inter-frame gap, per-unit timeouts and backoff, CRC errors
 * and exception codes counted per unit, and a port that reopens itself. What is
 * left for a library is this framing: two dozen lines, tested against the
 * spec's own examples.
 */

export type ReadTable = 'coil' | 'discrete' | 'holding' | 'input';

export const FUNCTION_CODES: Record<ReadTable, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };

/** Modbus over Serial Line §6.2.2: CRC-16, polynomial 0xA001 (reflected 0x8005), initial 0xFFFF. */
export function crc16(data: Uint8Array, end = data.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= data[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function withCrc(frame: Buffer): Buffer {
  const out = Buffer.alloc(frame.length + 2);
  frame.copy(out);
  out.writeUInt16LE(crc16(frame), frame.length);
  return out;
}

export function readRequest(unit: number, table: ReadTable, address: number, count: number): Buffer {
  const pdu = Buffer.alloc(6);
  pdu[0] = unit;
  pdu[1] = FUNCTION_CODES[table];
  pdu.writeUInt16BE(address, 2);
  pdu.writeUInt16BE(count, 4);
  return withCrc(pdu);
}

/** Length of a complete normal response to a read of `count` registers or bits. */
export function responseLength(table: ReadTable, count: number): number {
  const bytes = table === 'coil' || table === 'discrete' ? Math.ceil(count / 8) : count * 2;
  return 3 + bytes + 2;
}

export type ParsedResponse =
  | { ok: true; values: number[] }
  | { ok: false; kind: 'incomplete' }
  | { ok: false; kind: 'crc' | 'unexpected' | 'exception'; detail: string; exceptionCode?: number };

/** Modbus Application Protocol §7: exception codes. */
const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  11: 'gateway target device failed to respond',
};

/** Parses what has arrived so far for a request; `incomplete` until the whole frame is there. */
export function parseReadResponse(buf: Buffer, unit: number, table: ReadTable, count: number): ParsedResponse {
  const fc = FUNCTION_CODES[table];
  if (buf.length >= 2 && buf[1] === (fc | 0x80)) {
    if (buf.length < 5) return { ok: false, kind: 'incomplete' };
    if (crc16(buf, 3) !== buf.readUInt16LE(3)) return { ok: false, kind: 'crc', detail: 'CRC mismatch in an exception response' };
    const code = buf[2]!;
    return { ok: false, kind: 'exception', exceptionCode: code, detail: `exception ${code} (${EXCEPTIONS[code] ?? 'unknown'})` };
  }
  const length = responseLength(table, count);
  if (buf.length < length) return { ok: false, kind: 'incomplete' };
  if (crc16(buf, length - 2) !== buf.readUInt16LE(length - 2)) return { ok: false, kind: 'crc', detail: 'CRC mismatch' };
  if (buf[0] !== unit || buf[1] !== fc || buf[2] !== length - 5) {
    return { ok: false, kind: 'unexpected', detail: `frame from unit ${buf[0]} function ${buf[1]} with ${buf[2]} bytes, expected unit ${unit} function ${fc}` };
  }
  const values: number[] = [];
  if (table === 'coil' || table === 'discrete') {
    for (let i = 0; i < count; i++) values.push((buf[3 + (i >> 3)]! >> (i & 7)) & 1);
  } else {
    for (let i = 0; i < count; i++) values.push(buf.readUInt16BE(3 + i * 2));
  }
  return { ok: true, values };
}
