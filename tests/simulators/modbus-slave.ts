import { SerialPort } from 'serialport';
import { crc16 } from '../../edge/adapters/modbus/rtu-frame.js';

type Table = 'coil' | 'discrete' | 'holding' | 'input';
const TABLES: Record<number, Table> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

interface Unit {
  tables: Record<Table, Map<number, number>>;
  silent: boolean;
  corruptCrc: boolean;
  requests: number;
}

/**
 * Modbus RTU slaves on one serial line: the units of several devices answering
 * read requests from their register maps, as the built-in profiles describe them
 * (combustible gas detector on unit 1, CO detector on unit 2, sprinkler pressure
 * transmitter on unit 3). A unit can be told to go silent or to answer with a
 * broken CRC.
 */
export class ModbusSlaveSimulator {
  readonly units = new Map<number, Unit>();
  private port: SerialPort | undefined;
  private rx = Buffer.alloc(0);
  private animation: NodeJS.Timeout | undefined;

  constructor(private readonly path: string, private readonly settings = { baudRate: 9600, parity: 'even' as const }) {}

  addUnit(unit: number): Unit {
    const u: Unit = { tables: { coil: new Map(), discrete: new Map(), holding: new Map(), input: new Map() }, silent: false, corruptCrc: false, requests: 0 };
    this.units.set(unit, u);
    return u;
  }

  /** The three built-in Modbus devices at their default unit ids, with normal values. */
  withBuiltinDevices(): this {
    this.addUnit(1);
    this.addUnit(2);
    this.addUnit(3);
    this.setGas(1, 0.5);
    this.setCo(2, 3);
    this.setPressure(3, 7.25);
    return this;
  }

  /** Gas detector: %LEL in 0.1 steps in holding 0, status bits in holding 1 (bit 0 fault). */
  setGas(unit: number, percentLel: number, fault = false): void {
    this.set(unit, 'holding', 0, Math.round(percentLel * 10));
    this.set(unit, 'holding', 1, fault ? 1 : 0);
  }

  /** CO detector: ppm in input 0, status in input 1. */
  setCo(unit: number, ppm: number, fault = false): void {
    this.set(unit, 'input', 0, Math.round(ppm));
    this.set(unit, 'input', 1, fault ? 1 : 0);
  }

  /** Pressure transmitter: float32 bar in holding 0-1, low word first. */
  setPressure(unit: number, bar: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatBE(bar);
    this.set(unit, 'holding', 0, b.readUInt16BE(2));
    this.set(unit, 'holding', 1, b.readUInt16BE(0));
  }

  set(unit: number, table: Table, address: number, value: number): void {
    (this.units.get(unit) ?? this.addUnit(unit)).tables[table].set(address, value);
  }

  silence(unit: number, silent = true): void {
    this.units.get(unit)!.silent = silent;
  }

  corruptCrc(unit: number, corrupt = true): void {
    this.units.get(unit)!.corruptCrc = corrupt;
  }

  /** Slowly varying values, for the demo. */
  animate(everyMs = 1000): void {
    let t = 0;
    this.animation = setInterval(() => {
      t++;
      this.setGas(1, Math.max(0, 0.5 + Math.sin(t / 20) * 0.4));
      this.setCo(2, 3 + (t % 7));
      this.setPressure(3, 7.2 + Math.sin(t / 30) * 0.2);
    }, everyMs);
  }

  async open(): Promise<this> {
    this.port = await new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: this.path, baudRate: this.settings.baudRate, parity: this.settings.parity, autoOpen: false });
      p.open((err) => (err ? reject(err) : resolve(p)));
    });
    this.port.on('data', (chunk: Buffer) => this.receive(chunk));
    // An answer written as the line is unplugged (EBADF) is lost, as a real unit's would be; not an uncaught error of the test run.
    this.port.on('error', () => {});
    return this;
  }

  async close(): Promise<void> {
    clearInterval(this.animation);
    const p = this.port;
    this.port = undefined;
    if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
  }

  private receive(chunk: Buffer): void {
    this.rx = Buffer.concat([this.rx, chunk]);
    // Read requests are 8 bytes; resynchronise byte by byte on a bad CRC.
    while (this.rx.length >= 8) {
      const frame = this.rx.subarray(0, 8);
      if (crc16(frame, 6) !== frame.readUInt16LE(6)) {
        this.rx = this.rx.subarray(1);
        continue;
      }
      this.rx = this.rx.subarray(8);
      this.answer(frame[0]!, frame[1]!, frame.readUInt16BE(2), frame.readUInt16BE(4));
    }
  }

  private answer(unitId: number, fc: number, address: number, count: number): void {
    const unit = this.units.get(unitId);
    if (!unit || unit.silent) return;
    unit.requests++;
    const table = TABLES[fc];
    let body: Buffer;
    const values = table ? Array.from({ length: count }, (_, i) => unit.tables[table].get(address + i)) : [];
    if (!table) body = Buffer.from([unitId, fc | 0x80, 1]);
    else if (values.some((v) => v === undefined)) body = Buffer.from([unitId, fc | 0x80, 2]); // illegal data address
    else if (table === 'coil' || table === 'discrete') {
      const bytes = Buffer.alloc(Math.ceil(count / 8));
      values.forEach((v, i) => v && (bytes[i >> 3]! |= 1 << (i & 7)));
      body = Buffer.concat([Buffer.from([unitId, fc, bytes.length]), bytes]);
    } else {
      body = Buffer.alloc(3 + count * 2);
      body[0] = unitId;
      body[1] = fc;
      body[2] = count * 2;
      values.forEach((v, i) => body.writeUInt16BE(v!, 3 + i * 2));
    }
    const frame = Buffer.alloc(body.length + 2);
    body.copy(frame);
    frame.writeUInt16LE(crc16(body) ^ (unit.corruptCrc ? 0x5a5a : 0), body.length);
    this.port?.write(frame);
  }
}
