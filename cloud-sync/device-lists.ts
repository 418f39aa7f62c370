import type { DeviceHealth, GatewayStatus } from '../broker/contract/index.js';

export type Completed = { status: GatewayStatus; paired: boolean };

/**
 * Completes a gateway's periodic status with the device list of its last full
 * one (edge/health-report.ts): between full reports a gateway sends, instead of
 * its 1,000 devices, the list's name and when each device was last heard. The
 * sinks then see every status whole, as they did when each carried the list.
 */
export class DeviceLists {
  private readonly lists = new Map<string, { name: string | undefined; devices: DeviceHealth[] }>();

  /**
   * The status with its devices. A periodic report the hub has no list for
   * (another list's name, or none seen yet) keeps the devices last known, their
   * last-heard times as they were, and is not `paired`: the next full report
   * (at the gateway's next connect, or within 5 minutes) sets it right. It never
   * makes devices disappear.
   */
  complete(status: GatewayStatus): Completed {
    const h = status.health;
    if (!h) return { status, paired: true };
    const key = `${status.site}/${status.gateway}`;
    if (h.devices) {
      this.lists.set(key, { name: h.deviceList, devices: h.devices });
      return { status, paired: true };
    }
    const known = this.lists.get(key);
    const ago = h.lastSeenAgo ?? [];
    // A periodic report names its devices by their place in the list of its full one.
    if (!known || known.name !== h.deviceList || known.devices.length !== ago.length) {
      const { lastSeenAgo: _, devicesLost: __, ...rest } = h;
      return { status: { ...status, health: known ? { ...rest, devices: known.devices } : rest }, paired: false };
    }
    const lost = h.devicesLost ? new Set(h.devicesLost) : undefined;
    const devices = known.devices.map((d, i) => {
      const a = ago[i];
      return { ...d, lastSeen: a === null || a === undefined ? null : Math.max(0, h.at - a), commLost: lost ? lost.has(i) : d.commLost };
    });
    known.devices = devices;
    const { lastSeenAgo: _, devicesLost: __, ...rest } = h;
    return { status: { ...status, health: { ...rest, devices } }, paired: true };
  }
}
