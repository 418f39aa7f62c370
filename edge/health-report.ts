import { createHash } from 'node:crypto';
import { cleanText, type GatewayHealth } from '../broker/contract/index.js';
import type { Clock } from '../core/clock.js';
import type { Adapter } from './adapters/adapter.js';
import type { AlarmEngine } from './alarm-engine.js';
import type { DeviceBinding } from './device-binding.js';
import type { Publisher } from './publisher.js';
import type { Supervision } from './supervision.js';

/** A report every 5 s: the outbox, the links, when each device was last heard. */
const REPORT_EVERY_MS = 5000;
/**
 * A full report (with the device list) at least this often. It is always the
 * retained one, so a hub that starts later finds the list, and pairs the next
 * periodic report with it; this only bounds how old the retained status gets.
 */
const FULL_EVERY_MS = 300_000;

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
 * outbox and its links to the hub) in the status, so the hub shows it without
 * asking: every 5 s, and at once when a state changes (a port lost, a unit
 * backed off, a device gone silent, an alarm).
 *
 * A full report lists every device; it is the retained one, sent on every
 * connect, when the device list changes and every 5 minutes. The reports
 * between carry, instead of the list, its name, when each device was last
 * heard and which are lost: a few bytes per device instead of a hundred, since
 * 1,000 devices made a 115 KB status that shared the hub's event loop with the
 * alarms every 5 s.
 */
export class HealthReport {
  private timer: NodeJS.Timeout | undefined;
  /** What the last report said about states (not counters), to publish changes at once. */
  private shape = '';
  private lastFullAt = -Infinity;
  /** The device list of the last full report: a periodic one names it, so another list needs a full report first. */
  private fullList: string | undefined;
  private named: { bindings: readonly DeviceBinding[]; name: string } | undefined;

  constructor(private readonly d: HealthReportDeps) {
    d.publisher.statusFrom(() => this.full());
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), REPORT_EVERY_MS);
    this.publishFull();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The full report: also the gateway's own /health. */
  health(): GatewayHealth {
    const { d } = this;
    return {
      ...this.common(),
      devices: d.bindings().map((b) => ({
        id: b.device.id,
        profile: b.profile.id,
        transport: b.profile.transport,
        lastSeen: d.supervision.lastHeard(b.device.id),
        commLost: d.supervision.isLost(b.device.id),
        // Where it is, for the owner's page ("1F kitchen"); the config's words, bounded as the contract says.
        ...(b.device.location ? { location: cleanText(b.device.location) } : {}),
      })),
    };
  }

  /** A periodic report: the device list by its name, when each device was last heard, which are lost. */
  update(): GatewayHealth {
    const { d } = this;
    const common = this.common();
    const lost: number[] = [];
    const lastSeenAgo = d.bindings().map((b, i) => {
      if (d.supervision.isLost(b.device.id)) lost.push(i);
      const heard = d.supervision.lastHeard(b.device.id);
      return heard === null ? null : Math.max(0, common.at - heard);
    });
    return { ...common, lastSeenAgo, devicesLost: lost };
  }

  /** Publishes now if a state changed since the last report: a full one if the device list did. */
  publishIfChanged(): void {
    if (this.currentShape() !== this.shape) this.tick();
  }

  private tick(): void {
    const list = this.deviceList();
    if (list !== this.fullList || this.d.clock.now() - this.lastFullAt >= FULL_EVERY_MS) {
      this.publishFull();
      return;
    }
    this.shape = this.currentShape();
    this.d.publisher.publishStatusUpdate(this.update());
  }

  private full(): GatewayHealth {
    this.shape = this.currentShape();
    this.lastFullAt = this.d.clock.now();
    this.fullList = this.deviceList();
    return this.health();
  }

  private publishFull(): void {
    this.d.publisher.publishStatus(this.full());
  }

  private common(): Omit<GatewayHealth, 'devices' | 'lastSeenAgo' | 'devicesLost'> & { at: number } {
    const { d } = this;
    const outbox = d.publisher.stats();
    return {
      at: d.clock.now(),
      adapters: d.adapters().map((a) => a.health()),
      deviceList: this.deviceList(),
      activeConditions: d.engine.activeConditions(),
      // An error message of the disk may span lines; the status is text for a page.
      outbox: { ...outbox, ...(outbox.error ? { error: cleanText(outbox.error, 1000) } : {}) },
      unknownDevices: d.unknownDevices(),
    };
  }

  /** The name of the device list, computed again only when the configuration gives a new one. */
  private deviceList(): string {
    const bindings = this.d.bindings();
    if (this.named?.bindings !== bindings) {
      const list = bindings.map((b) => [b.device.id, b.profile.id, b.profile.transport, b.device.location ?? null]);
      this.named = { bindings, name: createHash('sha256').update(JSON.stringify(list)).digest('hex').slice(0, 16) };
    }
    return this.named.name;
  }

  /** The states a report carries, without counters and times: a change is published at once. */
  private currentShape(): string {
    const { d } = this;
    return JSON.stringify([
      d.adapters().map((a) => {
        const h = a.health();
        return [h.kind, h.connected, h.ports?.map((p) => p.state)];
      }),
      this.deviceList(),
      d.bindings().map((b) => (d.supervision.isLost(b.device.id) ? 1 : 0)).join(''),
      d.engine.activeConditions(),
      d.publisher.stats().links,
    ]);
  }
}
