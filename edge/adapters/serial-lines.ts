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
}

/**
 * Panels that print their events as text lines on a serial port (RS-232 printer
 * or automation port). One reader per device port; lines are decoded by the
 * device's profile. Noise, overlong lines and unrecognized lines are counted,
 * never fatal; a port that vanishes is reopened with backoff.
 */
export function createSerialLinesAdapter(ctx: AdapterContext): Adapter {
  const readers: PortReader[] = [];

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
              const outcome = decodeLine(profile, line, now);
              if (!outcome.recognized) {
                count('unrecognized');
                ctx.logger.debug({ device: binding.device.id, line: line.slice(0, 120) }, 'line not recognized by the profile');
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
    health(): AdapterHealth {
      const errors: Record<string, number> = {};
      for (const r of readers) for (const [k, v] of Object.entries({ ...r.counts, ...r.link.errors })) errors[k] = (errors[k] ?? 0) + v;
      return {
        kind: 'serial-lines',
        connected: readers.every((r) => r.link.isOpen),
        lastValueAt: readers.reduce<number | null>((m, r) => (r.lastValueAt !== null && (m === null || r.lastValueAt > m) ? r.lastValueAt : m), null),
        errors,
        ports: readers.map((r) => ({ port: r.binding.device.port!, device: r.binding.device.id, state: r.link.state, backoffMs: r.link.backoffMs, lastValueAt: r.lastValueAt, errors: { ...r.counts, ...r.link.errors } })),
      };
    },
  };
}
