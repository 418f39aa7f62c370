import type { AlarmEvent } from '../broker/contract/index.js';
import { COMM_LOST, type AlarmEngine } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';

/**
 * Supervision of devices by silence: a device whose profile says how often it
 * reports, and that has not been heard from for longer than it allows
 * (`silentAfterS`, default three report intervals), is raised as
 * "communication lost" trouble, as is one a bridge reports offline; the first
 * input after that clears it.
 */
export class Supervision {
  /** When each device last sent anything, seeded at (re)start so a device gets a full period first. */
  private readonly lastSeen = new Map<string, number>();
  /** When each device last sent anything (unlike lastSeen, not seeded): for status pages. */
  private readonly heardAt = new Map<string, number>();

  constructor(private readonly engine: AlarmEngine) {}

  /** A device gets a full silence period after a (re)start before it counts as lost. */
  seed(bindings: readonly DeviceBinding[], now: number): void {
    for (const b of bindings) if (!this.lastSeen.has(b.device.id)) this.lastSeen.set(b.device.id, now);
  }

  /** Any input, even one that does not decode, proves the link; returns the clear of a lost link, if it was lost. */
  heard(binding: DeviceBinding, now: number): AlarmEvent[] {
    const device = binding.device.id;
    this.lastSeen.set(device, now);
    this.heardAt.set(device, now);
    if (!this.engine.isActive(device, COMM_LOST)) return [];
    return this.engine.signal(binding, { key: COMM_LOST, class: 'trouble', state: 'cleared', time: now, text: 'device reports again' });
  }

  /** A bridge says the device is offline: lost now, not after the silence limit. */
  reportedOffline(binding: DeviceBinding, now: number, text: string): AlarmEvent[] {
    if (this.engine.isActive(binding.device.id, COMM_LOST)) return [];
    return this.engine.signal(binding, { key: COMM_LOST, class: 'trouble', state: 'active', time: now, text });
  }

  lastHeard(device: string): number | null {
    return this.heardAt.get(device) ?? null;
  }

  isLost(device: string): boolean {
    return this.engine.isActive(device, COMM_LOST);
  }

  /** Raises "communication lost" for every device silent longer than its profile allows. */
  check(bindings: readonly DeviceBinding[], now: number): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    for (const b of bindings) {
      const sup = b.profile.supervision;
      if (!sup) continue;
      const silentMs = (sup.silentAfterS ?? sup.reportIntervalS * 3) * 1000;
      const last = this.lastSeen.get(b.device.id) ?? now;
      if (now - last > silentMs && !this.engine.isActive(b.device.id, COMM_LOST)) {
        events.push(...this.engine.signal(b, { key: COMM_LOST, class: 'trouble', state: 'active', time: now, text: `no reading for ${Math.round((now - last) / 1000)} s` }));
      }
    }
    return events;
  }
}
