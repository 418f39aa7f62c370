import { describe, expect, it } from 'vitest';
import { crc16, parseReadResponse, readRequest, responseLength } from '../../../edge/adapters/modbus/rtu-frame.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

describe('Modbus RTU framing', () => {
  it('computes the CRC of the examples in Modbus over Serial Line', () => {
    // Read 10 holding registers from 0 of unit 1: 01 03 00 00 00 0A, CRC C5 CD (low byte first).
    expect(readRequest(1, 'holding', 0, 10)).toEqual(hex('01 03 00 00 00 0A C5 CD'));
    expect(crc16(hex('02 07'))).toBe(0x1241);
  });

  it('parses a holding register response', () => {
    const frame = Buffer.concat([hex('01 03 04 00 23 00 00'), Buffer.alloc(2)]);
    frame.writeUInt16LE(crc16(frame, 7), 7);
    expect(responseLength('holding', 2)).toBe(9);
    expect(parseReadResponse(frame.subarray(0, 5), 1, 'holding', 2)).toEqual({ ok: false, kind: 'incomplete' });
    expect(parseReadResponse(frame, 1, 'holding', 2)).toEqual({ ok: true, values: [0x23, 0] });
  });

  it('unpacks coils, least significant bit first', () => {
    const frame = Buffer.concat([hex('05 01 02 CD 01'), Buffer.alloc(2)]);
    frame.writeUInt16LE(crc16(frame, 5), 5);
    expect(parseReadResponse(frame, 5, 'coil', 10)).toEqual({ ok: true, values: [1, 0, 1, 1, 0, 0, 1, 1, 1, 0] });
  });

  it('reports a corrupted frame, an exception and a frame from another unit', () => {
    const good = Buffer.concat([hex('01 04 02 00 0C'), Buffer.alloc(2)]);
    good.writeUInt16LE(crc16(good, 5), 5);
    const bad = Buffer.from(good);
    bad.writeUInt8(bad.readUInt8(4) ^ 0x01, 4);
    expect(parseReadResponse(bad, 1, 'input', 1)).toMatchObject({ ok: false, kind: 'crc' });
    const exception = Buffer.concat([hex('01 83 02'), Buffer.alloc(2)]);
    exception.writeUInt16LE(crc16(exception, 3), 3);
    expect(parseReadResponse(exception, 1, 'holding', 1)).toMatchObject({ ok: false, kind: 'exception', exceptionCode: 2, detail: 'exception 2 (illegal data address)' });
    expect(parseReadResponse(good, 2, 'input', 1)).toMatchObject({ ok: false, kind: 'unexpected' });
  });
});
