import { decodeRegisters, registerBlocks, type RegisterImage } from '../../device-profiles/codecs/modbus-registers.js';
import type { ProfileOf } from '../../device-profiles/schema.js';
import type { DeviceBinding } from '../device-binding.js';
import type { Adapter, AdapterContext, AdapterHealth, PortHealth } from './adapter.js';
import { ModbusBus, defaultFrameGapMs } from './modbus/bus.js';

const MAX_BACKOFF_MS = 30_000;

interface UnitPoller {
  binding: DeviceBinding;
  profile: ProfileOf<'modbus-rtu'>;
  unit: number;
  bus: ModbusBus;
  blocks: ReturnType<typeof registerBlocks>;
  nextPollAt: number;
  failures: number;
  backoffMs: number;
  lastValueAt: number | null;
  errors: Record<string, number>;
}

/**
 * Modbus RTU master. One scheduler per serial port (bus); each unit on it is
 * polled at its profile's interval, one transaction at a time. A unit that stops
 * answering is polled less and less often (exponential backoff up to 30 s), so
 * its timeouts do not eat the bus time of the units that still answer; it comes
 * back to its normal rate at its first answer. Timeouts, CRC errors, exceptions
 * and stray frames are counted per unit.
 */
export function createModbusRtuAdapter(ctx: AdapterContext): Adapter {
  const buses = new Map<string, ModbusBus>();
  const pollers: UnitPoller[] = [];
  const loops: Promise<void>[] = [];
  let stopping: AbortController | undefined;

  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });

  async function poll(p: UnitPoller): Promise<void> {
    const image: RegisterImage = {};
    const started = ctx.clock.now();
    for (const block of p.blocks) {
      const r = await p.bus.read(p.unit, block.table, block.address, block.count, p.profile.modbus.timeoutMs);
      if (r.ok) {
        const table = (image[block.table] ??= new Map<number, number>()) as Map<number, number>;
        r.values.forEach((v, i) => table.set(block.address + i, v));
        continue;
      }
      p.errors[r.kind] = (p.errors[r.kind] ?? 0) + 1;
      if (r.kind === 'exception') {
        // The unit is there but refuses the read: the register map does not fit it.
        ctx.onDecoded(p.binding, { values: [], signals: [], errors: [`${block.table}[${block.address}..${block.address + block.count - 1}]: ${r.detail}`] });
      }
      return failed(p, r.kind, 'detail' in r ? r.detail : r.kind);
    }
    p.failures = 0;
    if (p.backoffMs) ctx.logger.info({ device: p.binding.device.id, unit: p.unit }, 'modbus unit answers again');
    p.backoffMs = 0;
    p.nextPollAt = started + p.profile.modbus.pollIntervalMs;
    p.lastValueAt = ctx.clock.now();
    ctx.onDecoded(p.binding, decodeRegisters(p.profile, image, p.lastValueAt));
  }

  function failed(p: UnitPoller, kind: string, detail: string): void {
    p.failures++;
    const interval = p.profile.modbus.pollIntervalMs;
    // One miss may be a collision or noise: retry at the normal rate once, then back off.
    if (p.failures >= 2) {
      const before = p.backoffMs;
      p.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(interval, p.backoffMs * 2));
      if (before === 0) ctx.logger.warn({ device: p.binding.device.id, unit: p.unit, port: p.binding.device.port, kind, detail }, 'modbus unit not answering; backing off');
    }
    p.nextPollAt = ctx.clock.now() + Math.max(interval, p.backoffMs);
  }

  async function runBus(bus: ModbusBus, units: UnitPoller[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // A closed port is the link's problem (it reopens and counts); polling it would only add noise.
      if (!bus.link.isOpen) {
        await sleep(100, signal);
        continue;
      }
      const now = ctx.clock.now();
      const due = units.filter((u) => u.nextPollAt <= now).sort((a, b) => a.nextPollAt - b.nextPollAt)[0];
      if (!due) {
        await sleep(Math.min(...units.map((u) => u.nextPollAt)) - now, signal);
        continue;
      }
      await poll(due);
    }
  }

  return {
    kind: 'modbus-rtu',
    async start() {
      stopping = new AbortController();
      for (const binding of ctx.devices) {
        const profile = binding.profile;
        const path = binding.device.port;
        if (profile.transport !== 'modbus-rtu' || !path || binding.unitId === undefined) continue;
        let bus = buses.get(path);
        if (!bus) {
          const gaps = ctx.devices.filter((d) => d.device.port === path && d.profile.transport === 'modbus-rtu').map((d) => (d.profile as ProfileOf<'modbus-rtu'>).modbus.frameGapMs ?? 0);
          // The serial link names its port in every line it logs; a child logger with `port` too would write the key twice.
          bus = new ModbusBus({ path, settings: profile.serial, frameGapMs: Math.max(defaultFrameGapMs(profile.serial.baudRate), ...gaps), logger: ctx.logger });
          buses.set(path, bus);
          bus.start();
        }
        pollers.push({ binding, profile, unit: binding.unitId, bus, blocks: registerBlocks(profile), nextPollAt: 0, failures: 0, backoffMs: 0, lastValueAt: null, errors: {} });
      }
      for (const bus of buses.values()) loops.push(runBus(bus, pollers.filter((p) => p.bus === bus), stopping.signal));
    },
    async stop() {
      stopping?.abort();
      await Promise.all(loops.splice(0));
      await Promise.all([...buses.values()].map((b) => b.stop()));
      buses.clear();
      pollers.length = 0;
    },
    hearing() {
      // The port open: a unit that does not answer then is the unit's problem (communication lost).
      return new Set(pollers.filter((p) => p.bus.link.isOpen).map((p) => p.binding.device.id));
    },
    health(): AdapterHealth {
      const errors: Record<string, number> = {};
      const ports: PortHealth[] = [];
      for (const [path, bus] of buses) {
        for (const [k, v] of Object.entries(bus.link.errors)) errors[`port_${k}`] = (errors[`port_${k}`] ?? 0) + v;
        for (const p of pollers.filter((x) => x.bus === bus)) {
          for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
          ports.push({
            port: `${path}#${p.unit}`,
            device: p.binding.device.id,
            state: !bus.link.isOpen ? `port ${bus.link.state}` : p.backoffMs ? 'backoff' : p.lastValueAt === null ? 'waiting' : 'ok',
            backoffMs: p.backoffMs,
            lastValueAt: p.lastValueAt,
            errors: { ...p.errors },
          });
        }
      }
      const lastValueAt = pollers.reduce<number | null>((m, p) => (p.lastValueAt !== null && (m === null || p.lastValueAt > m) ? p.lastValueAt : m), null);
      return { kind: 'modbus-rtu', connected: [...buses.values()].every((b) => b.link.isOpen), lastValueAt, errors, ports };
    },
  };
}
