import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { contactIdClass, contactIdState } from '../../../device-profiles/codecs/contact-id.js';
import { decodeRegisters, registerBlocks } from '../../../device-profiles/codecs/modbus-registers.js';
import { decodeOpcuaValues } from '../../../device-profiles/codecs/opcua-values.js';
import { decodeLine } from '../../../device-profiles/codecs/serial-lines.js';
import { loadBuiltinProfiles, requireProfile } from '../../../device-profiles/loader.js';
import { ModbusProfile } from '../../../device-profiles/schema.js';

const builtins = loadBuiltinProfiles();
const printer = requireProfile(builtins, 'serial-conventional-panel-printer', 'serial-lines');
const cid = requireProfile(builtins, 'serial-contact-id-panel', 'serial-lines');
const gas = requireProfile(builtins, 'modbus-combustible-gas-detector', 'modbus-rtu');
const bms = requireProfile(builtins, 'opcua-bms-sprinkler-system', 'opcua');

const modbus = (points: unknown[]) =>
  ModbusProfile.parse({ id: 'test-regs', vendor: 'v', model: 'm', description: 'd', version: 1, transport: 'modbus-rtu', points });

describe('modbus registers', () => {
  it('decodes every data type and both word orders', () => {
    const p = modbus([
      { metric: 'temperature', unit: 'Cel', range: [-100, 100], scale: 0.1, read: { function: 'holding', address: 0, dataType: 'int16' } },
      { metric: 'water_pressure', unit: 'bar', range: [0, 25], read: { function: 'holding', address: 1, dataType: 'float32', wordOrder: 'big' } },
      { metric: 'tank_level', unit: '%', range: [0, 100], read: { function: 'holding', address: 3, dataType: 'float32', wordOrder: 'little' } },
      { metric: 'water_flow', unit: 'L/min', range: [0, 1e6], read: { function: 'input', address: 0, dataType: 'uint32' } },
      { metric: 'carbon_monoxide', unit: 'ppm', range: [-1e6, 1e6], read: { function: 'input', address: 2, dataType: 'int32', wordOrder: 'little' } },
      { metric: 'pump_running', unit: 'bool', type: 'boolean', read: { function: 'coil', address: 7 } },
      { metric: 'fault', unit: 'bool', type: 'boolean', read: { function: 'holding', address: 5, bit: 3 } },
    ]);
    const out = decodeRegisters(
      p,
      {
        holding: { 0: 0xff9c, 1: 0x40e8, 2: 0x0000, 3: 0x0000, 4: 0x42c8, 5: 0b1000 },
        input: { 0: 0x0001, 1: 0x0002, 2: 0xfffe, 3: 0xffff },
        coil: { 7: 1 },
      },
      5,
    );
    expect(out.errors).toEqual([]);
    expect(out.values.map((v) => [v.metric, Math.round(v.value * 1000) / 1000])).toEqual([
      ['temperature', -10],
      ['water_pressure', 7.25],
      ['tank_level', 100],
      ['water_flow', 65538],
      ['carbon_monoxide', -2],
      ['pump_running', 1],
      ['fault', 1],
    ]);
  });

  it('plans one read per contiguous block', () => {
    expect(registerBlocks(gas)).toEqual([{ table: 'holding', address: 0, count: 2 }]);
    const p = modbus([
      { metric: 'temperature', unit: 'Cel', range: [0, 1], read: { function: 'holding', address: 0 } },
      { metric: 'humidity', unit: '%RH', range: [0, 1], read: { function: 'holding', address: 100, dataType: 'float32' } },
      { metric: 'fault', unit: 'bool', type: 'boolean', read: { function: 'discrete', address: 3 } },
    ]);
    expect(registerBlocks(p)).toEqual([
      { table: 'holding', address: 0, count: 1 },
      { table: 'holding', address: 100, count: 2 },
      { table: 'discrete', address: 3, count: 1 },
    ]);
  });

  it('never throws on random register values or missing registers (fuzz)', () => {
    for (let i = 0; i < 3000; i++) {
      const regs: Record<number, number> = {};
      for (let a = 0; a < 4; a++) if (Math.random() < 0.8) regs[a] = [Math.floor(Math.random() * 65536), -1, 70000, 1.5, Number.NaN][i % 5]!;
      const out = decodeRegisters(gas, { holding: regs }, 1);
      for (const v of out.values) expect(Number.isFinite(v.value)).toBe(true);
      expect(out.values.length + out.errors.length).toBe(2);
    }
  });
});

describe('serial lines', () => {
  it('turns a panel event and its restore into one signal key, at the time the panel printed', () => {
    const utc = { timeZone: 'UTC' };
    const a = decodeLine(printer, '26/11/26 10:31:05 FIRE ALARM      ZONE 03 KITCHEN 1F\r', Date.UTC(2026, 10, 26, 10, 31, 7), utc);
    const r = decodeLine(printer, '26/11/26 10:35:40 FIRE RESTORE    ZONE 03 KITCHEN 1F', Date.UTC(2026, 10, 26, 10, 35, 41), utc);
    expect(a.signals).toEqual([{ key: 'fire-zone-03', class: 'fire', state: 'active', time: Date.UTC(2026, 10, 26, 10, 31, 5), text: '26/11/26 10:31:05 FIRE ALARM      ZONE 03 KITCHEN 1F' }]);
    expect(a.errors).toEqual([]);
    expect(r.signals[0]).toMatchObject({ key: 'fire-zone-03', state: 'cleared' });
  });

  it('recognizes a reset, ignores headers, and reports unknown lines as not recognized', () => {
    expect(decodeLine(printer, '26/11/26 11:15:00 SYSTEM RESET', 1)).toMatchObject({ resetAll: true, line: 'recognized' });
    expect(decodeLine(printer, '==========', 1)).toMatchObject({ line: 'ignored', signals: [], errors: [] });
    expect(decodeLine(printer, 'PRINTER PAPER LOW', 1)).toMatchObject({ line: 'unrecognized', signals: [], errors: [] });
  });

  it('strips control characters and noise bytes a printer port carries', () => {
    expect(decodeLine(printer, '\u0000\u0007  26/11/26 10:31:05 FIRE ALARM ZONE 3\u000c', 1).signals[0]?.key).toBe('fire-zone-3');
  });

  it('never throws on random bytes or truncated lines (fuzz)', () => {
    const line = '"ADM-CID"0012L0#1234[#1234|1110 01 003]';
    for (let i = 0; i < 5000; i++) {
      const text = i % 2 ? randomBytes(i % 300).toString('latin1') : line.slice(0, i % line.length);
      for (const p of [printer, cid]) {
        const out = decodeLine(p, text, 1);
        for (const s of out.signals) expect(['fire', 'waterflow', 'gas', 'co', 'intrusion', 'supervisory', 'trouble']).toContain(s.class);
      }
    }
  });
});

describe('Contact ID', () => {
  it.each([
    [110, 'fire'],
    [111, 'fire'],
    [113, 'waterflow'],
    [151, 'gas'],
    [162, 'co'],
    [130, 'intrusion'],
    [100, 'supervisory'],
    [200, 'supervisory'],
    [301, 'trouble'],
    [373, 'trouble'],
    [401, undefined],
    [602, undefined],
  ])('event code %i is %s', (code, cls) => {
    expect(contactIdClass(code)).toBe(cls);
  });

  it('maps qualifiers 1 and 6 to active, 3 to cleared', () => {
    expect([1, 3, 6, 9].map(contactIdState)).toEqual(['active', 'cleared', 'active', undefined]);
  });
});

describe('OPC-UA values', () => {
  it('decodes numbers and booleans, and reports bad statuses and strings', () => {
    const out = decodeOpcuaValues(bms, new Map<string, unknown>([['ns=2;s=Sprinkler.Pump.Running', true], ['ns=2;s=Sprinkler.Tank.Level', 'full'], ['ns=2;s=Sprinkler.Pump.DischargePressure', null]]), 1);
    expect(out.values).toEqual([{ metric: 'pump_running', unit: 'bool', value: 1, time: 1, quality: 'good' }]);
    expect(out.errors).toHaveLength(2);
  });
});
