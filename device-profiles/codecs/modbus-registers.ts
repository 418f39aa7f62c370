import type { ProfileOf } from '../schema.js';
import { emptyOutcome, finishValue, type DecodeOutcome } from './decoded.js';

type Table = 'holding' | 'input' | 'coil' | 'discrete';

/**
 * What one poll read from a Modbus unit: for each table, the 16-bit register
 * (or bit, 0/1) values by 0-based address.
 */
export type RegisterImage = Partial<Record<Table, ReadonlyMap<number, number> | Record<number, number>>>;

const WORDS: Record<string, number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, bool: 1 };

/** The register blocks a poll must read: contiguous ranges per table, so one request covers many points. */
export function registerBlocks(profile: ProfileOf<'modbus-rtu'>, maxCount = 125): { table: Table; address: number; count: number }[] {
  const byTable = new Map<Table, number[]>();
  for (const p of profile.points) {
    const words = WORDS[p.read.dataType] ?? 1;
    const list = byTable.get(p.read.function) ?? [];
    for (let i = 0; i < words; i++) list.push(p.read.address + i);
    byTable.set(p.read.function, list);
  }
  const blocks: { table: Table; address: number; count: number }[] = [];
  for (const [table, addresses] of byTable) {
    const sorted = [...new Set(addresses)].sort((a, b) => a - b);
    let start = sorted[0]!;
    let prev = start;
    for (const a of sorted.slice(1)) {
      // A small gap is cheaper to read through than a second request on a slow bus.
      if (a - prev > 8 || a - start + 1 > maxCount) {
        blocks.push({ table, address: start, count: prev - start + 1 });
        start = a;
      }
      prev = a;
    }
    blocks.push({ table, address: start, count: prev - start + 1 });
  }
  return blocks;
}

/** Turns the registers of one poll into readings. Never throws. */
export function decodeRegisters(profile: ProfileOf<'modbus-rtu'>, image: RegisterImage, time: number): DecodeOutcome {
  const out = emptyOutcome();
  for (const point of profile.points) {
    const { function: table, address, dataType, wordOrder, bit } = point.read;
    const get = (a: number): number | undefined => {
      const t = image[table];
      const v = t instanceof Map ? t.get(a) : (t as Record<number, number> | undefined)?.[a];
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff ? v : undefined;
    };
    const words = WORDS[dataType] ?? 1;
    const regs: number[] = [];
    for (let i = 0; i < words; i++) {
      const v = get(address + i);
      if (v === undefined) break;
      regs.push(v);
    }
    if (regs.length < words) {
      out.errors.push(`${table}[${address}]: ${words === 1 ? 'register' : `${words} registers`} missing or not 16-bit in the response`);
      continue;
    }
    let raw: number;
    if (table === 'coil' || table === 'discrete') raw = regs[0]! ? 1 : 0;
    else if (bit !== undefined) raw = (regs[0]! >> bit) & 1;
    else {
      const [hi, lo] = words === 2 && wordOrder === 'little' ? [regs[1]!, regs[0]!] : [regs[0]!, regs[1] ?? 0];
      const buf = Buffer.alloc(4);
      buf.writeUInt16BE(hi, 0);
      buf.writeUInt16BE(lo, 2);
      raw =
        dataType === 'int16' ? buf.readInt16BE(0)
        : dataType === 'uint16' || dataType === 'bool' ? buf.readUInt16BE(0)
        : dataType === 'int32' ? buf.readInt32BE(0)
        : dataType === 'uint32' ? buf.readUInt32BE(0)
        : buf.readFloatBE(0);
    }
    if (!Number.isFinite(raw)) {
      out.errors.push(`${table}[${address}]: ${dataType} value is not a finite number (NaN or infinity)`);
      continue;
    }
    out.values.push(finishValue(point, raw, time));
  }
  return out;
}
