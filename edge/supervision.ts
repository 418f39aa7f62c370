import type { AlarmEvent } from '../broker/contract/index.js';
import { COMM_LOST, type AlarmEngine, type SignalSource } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';

/** The gateway's own trouble while it cannot hear supervised devices (its link to them is down) for longer than they may be silent. */
export const DEVICES_UNHEARD = 'devices-unheard';

/** At most this many device ids in the trouble's text; the count is always there. */
const NAMED_IN_TEXT = 5;

/**
 * Supervision of devices by silence: a device whose profile says how often it
 * reports, and that has not been heard from for longer than it allows
 * (`silentAfterS`, default three report intervals), is raised as
 * "communication lost" trouble, as is one a bridge reports offline; the first
 * input after that clears it.
 *
 * Silence counts from when the device could first have been heard: its
 * adapter's link up (MQTT: connected to the device broker and the subscription
 * granted; serial and Modbus: the port open; OPC-UA: the session up), at
 * start-up and again each time a lost link comes back. While the gateway
 * cannot hear a device, its silence is not the device's fault: it is the
 * gateway's own trouble (EN 54-2 §8 fault warnings, NFPA 72 §12.6 monitoring for integrity: a fault of the path to the
 * devices is itself a trouble signal), raised on the gateway once the link has
 * been down longer than the shortest silence limit of the devices behind it,
 * so that a dead link is never a quiet one, and cleared when it is back.
 */
export class Supervision {
  /** When each device's silence counts from: its last input, or when it could first be heard after that. */
  private readonly lastSeen = new Map<string, number>();
  /** When each device last sent anything (unlike lastSeen, never moved by a link): for status pages. */
  private readonly heardAt = new Map<string, number>();
  /** Devices the gateway cannot hear now, and since when. */
  private readonly unheardSince = new Map<string, number>();

  constructor(
    private readonly engine: AlarmEngine,
    private readonly self: SignalSource,
  ) {}

  /** Adapters (re)starting: no device can be heard until its adapter says so (`hearing`). */
  seed(bindings: readonly DeviceBinding[], now: number): void {
    for (const b of bindings) if (!this.unheardSince.has(b.device.id)) this.unheardSince.set(b.device.id, now);
  }

  /**
   * What the adapters can hear now. A device that becomes audible gets a full
   * silence period from now; one that stops being audible is not counted
   * silent from now on, but unheard.
   */
  hearing(bindings: readonly DeviceBinding[], canHear: (binding: DeviceBinding) => boolean, now: number): void {
    for (const b of bindings) {
      const id = b.device.id;
      const unheard = this.unheardSince.has(id);
      if (canHear(b) && unheard) {
        this.unheardSince.delete(id);
        this.lastSeen.set(id, Math.max(now, this.lastSeen.get(id) ?? now));
      } else if (!canHear(b) && !unheard) {
        this.unheardSince.set(id, now);
      }
    }
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

  /**
   * Raises "communication lost" for every audible device silent longer than
   * its profile allows, and the gateway's own trouble while it has not been
   * able to hear some for longer than that (cleared once it hears them all).
   */
  check(bindings: readonly DeviceBinding[], now: number): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    const unheard: string[] = [];
    for (const b of bindings) {
      const sup = b.profile.supervision;
      if (!sup) continue;
      const id = b.device.id;
      const silentMs = (sup.silentAfterS ?? sup.reportIntervalS * 3) * 1000;
      const since = this.unheardSince.get(id);
      if (since !== undefined) {
        if (now - since > silentMs) unheard.push(id);
        continue;
      }
      const last = this.lastSeen.get(id) ?? now;
      if (now - last > silentMs && !this.engine.isActive(id, COMM_LOST)) {
        events.push(...this.engine.signal(b, { key: COMM_LOST, class: 'trouble', state: 'active', time: now, text: `no reading for ${Math.round((now - last) / 1000)} s` }));
      }
    }
    const active = this.engine.isActive(this.self.device.id, DEVICES_UNHEARD);
    if (unheard.length && !active) {
      const named = unheard.slice(0, NAMED_IN_TEXT).join(', ') + (unheard.length > NAMED_IN_TEXT ? ', ...' : '');
      const text = `cannot hear ${unheard.length} device${unheard.length === 1 ? '' : 's'} (${named}): the gateway's connection to them is down`;
      events.push(...this.engine.signal(this.self, { key: DEVICES_UNHEARD, class: 'trouble', state: 'active', time: now, text }));
    } else if (!unheard.length && active && !bindings.some((b) => b.profile.supervision && this.unheardSince.has(b.device.id))) {
      events.push(...this.engine.signal(this.self, { key: DEVICES_UNHEARD, class: 'trouble', state: 'cleared', time: now, text: 'the gateway hears its devices again' }));
    }
    return events;
  }
}
