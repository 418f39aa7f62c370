import { cleanText } from '../../broker/contract/index.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { decodeLine } from '../../device-profiles/codecs/serial-lines.js';
import type { DeviceBinding } from '../device-binding.js';
import type { Adapter, AdapterContext, AdapterHealth } from './adapter.js';
import { LineSplitter } from './line-splitter.js';
import { SerialLink } from './serial-link.js';

interface PortReader {
  binding: DeviceBinding;
  link: SerialLink;
  splitter: LineSplitter;
  lastValueAt: number | null;
  counts: Record<string, number>;
  /** The last line no rule knew, so a person can write the rule it needs. */
  lastUnrecognized?: { line: string; at: number };
}

/** Shown and logged: enough of a line to recognise it, never a terminal escape. */
const shown = (line: string) => cleanText(line.trim(), 120);

/**
 * Panels that print their events as text lines on a serial port (RS-232 printer
 * or automation port). One reader per device port; lines are decoded by the
 * device's profile. Noise, overlong lines and unrecognized lines are counted,
 * never fatal; a port that vanishes is reopened with backoff.
 */
export function createSerialLinesAdapter(ctx: AdapterContext): Adapter {
  const readers: PortReader[] = [];
  // One line a minute per device: a panel printing a format the profile lacks would otherwise fill the log.
  const unrecognizedLog = new ThrottledLog(ctx.logger, ctx.clock, 60_000);

  return {
    kind: 'serial-lines',
    async start() {
      for (const binding of ctx.devices) {
        const profile = binding.profile;
        if (profile.transport !== 'serial-lines' || !binding.device.port) continue;
        const splitter = new LineSplitter(profile.serial.maxLineLength);
        const reader: PortReader = { binding, splitter, lastValueAt: null, counts: {}, link: undefined as unknown as SerialLink };
        const count = (kind: string, n = 1) => {
          if (n > 0) reader.counts[kind] = (reader.counts[kind] ?? 0) + n;
        };
        reader.link = new SerialLink({
          path: binding.device.port,
          settings: profile.serial,
          logger: ctx.logger.child({ device: binding.device.id }),
          onOpen: () => splitter.reset(),
          onData: (chunk) => {
            const before = { noise: splitter.noiseBytes, overlong: splitter.overlong };
            const lines = splitter.push(chunk);
            count('noiseBytes', splitter.noiseBytes - before.noise);
            count('overlong', splitter.overlong - before.overlong);
            for (const line of lines) {
              const now = ctx.clock.now();
              const outcome = decodeLine(profile, line, now, binding.device.timeZone ? { timeZone: binding.device.timeZone } : {});
              if (outcome.line === 'unrecognized' && outcome.errors.length === 0) {
                count('unrecognized');
                reader.lastUnrecognized = { line: shown(line), at: now };
                unrecognizedLog.write('info', binding.device.id, { device: binding.device.id, profile: profile.id, line: reader.lastUnrecognized.line }, 'line not recognized by the profile (add a rule, or an ignore pattern)');
              }
              if (outcome.errors.length) count('decode');
              if (outcome.signals.length || outcome.values.length) reader.lastValueAt = now;
              ctx.onDecoded(binding, outcome);
            }
          },
        });
        reader.link.start();
        readers.push(reader);
      }
    },
    async stop() {
      await Promise.all(readers.map((r) => r.link.stop()));
      readers.length = 0;
    },
    hearing() {
      return new Set(readers.filter((r) => r.link.isOpen).map((r) => r.binding.device.id));
    },
    health(): AdapterHealth {
      const errors: Record<string, number> = {};
      for (const r of readers) for (const [k, v] of Object.entries({ ...r.counts, ...r.link.errors })) errors[k] = (errors[k] ?? 0) + v;
      return {
        kind: 'serial-lines',
        connected: readers.every((r) => r.link.isOpen),
        lastValueAt: readers.reduce<number | null>((m, r) => (r.lastValueAt !== null && (m === null || r.lastValueAt > m) ? r.lastValueAt : m), null),
        errors,
        ports: readers.map((r) => ({
          port: r.binding.device.port!,
          device: r.binding.device.id,
          state: r.link.state,
          backoffMs: r.link.backoffMs,
          lastValueAt: r.lastValueAt,
          errors: { ...r.counts, ...r.link.errors },
          ...(r.lastUnrecognized ? { lastUnrecognized: { ...r.lastUnrecognized } } : {}),
        })),
      };
    },
  };
}
