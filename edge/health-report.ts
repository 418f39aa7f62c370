import { cleanText, type GatewayHealth } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Adapter } from './adapters/adapter.js';
import type { AlarmEngine } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';
import type { Publisher } from './publisher.js';
import type { Supervision } from './supervision.js';

const HEALTH_EVERY_MS = 5000;

export interface HealthReportDeps {
  clock: Clock;
  adapters: () => readonly Adapter[];
  bindings: () => readonly DeviceBinding[];
  engine: AlarmEngine;
  supervision: Supervision;
  publisher: Publisher;
  /** Devices heard on the broker but not configured. */
  unknownDevices: () => NonNullable<GatewayHealth['unknownDevices']>;
}

/**
 * The gateway's health (per transport, port, device; active conditions; the
 * outbox and its links to the hub), published in the retained status every
 * 5 s and at once when a state changes (a port lost, a unit backed off, a
 * device gone silent), so the hub shows it without asking.
 */
export class HealthReport {
  private timer: NodeJS.Timeout | undefined;
  /** What the last published health said about states (not counters), to publish changes at once. */
  private shape = '';

  constructor(private readonly d: HealthReportDeps) {}

  start(): void {
    this.timer = setInterval(() => this.publish(), HEALTH_EVERY_MS);
    this.publish();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  health(): GatewayHealth {
    const { d } = this;
    const outbox = d.publisher.stats();
    return {
      at: d.clock.now(),
      adapters: d.adapters().map((a) => a.health()),
      devices: d.bindings().map((b) => ({
        id: b.device.id,
        profile: b.profile.id,
        transport: b.profile.transport,
        lastSeen: d.supervision.lastHeard(b.device.id),
        commLost: d.supervision.isLost(b.device.id),
        // Where it is, for the owner's page ("1F kitchen"); the config's words, bounded as the contract says.
        ...(b.device.location ? { location: cleanText(b.device.location) } : {}),
      })),
      activeConditions: d.engine.activeConditions(),
      // An error message of the disk may span lines; the status is text for a page.
      outbox: { ...outbox, ...(outbox.error ? { error: cleanText(outbox.error, 1000) } : {}) },
      unknownDevices: d.unknownDevices(),
    };
  }

  /** Publishes now if a state changed since the last report. */
  publishIfChanged(): void {
    if (healthShape(this.health()) !== this.shape) this.publish();
  }

  private publish(): void {
    const health = this.health();
    this.shape = healthShape(health);
    this.d.publisher.publishStatus(health);
  }
}

/** The states in a health report, without counters and times. */
function healthShape(h: GatewayHealth): string {
  return JSON.stringify([h.adapters.map((a) => [a.kind, a.connected, a.ports?.map((p) => p.state)]), h.devices.map((d) => d.commLost), h.activeConditions, h.outbox?.links]);
}
