import { ID_PATTERN, cleanText } from '../broker/contract/index.js';
import type { HeardDevice } from './adapters/adapter.js';

/** How many devices heard but not configured a gateway keeps (and shows in its health): the most recently heard. */
export const MAX_UNKNOWN_DEVICES = 20;

export interface UnknownDevice extends HeardDevice {
  firstHeard: number;
  lastHeard: number;
  messages: number;
}

/**
 * Devices heard on the broker that no configured device matches, so a person
 * can add them (`cosafe status` lists them with their topic). Bounded: a flood
 * of made-up topics keeps the 20 most recently heard, never more.
 */
export class UnknownDevices {
  private readonly byTopic = new Map<string, UnknownDevice>();

  /** Records one message; true the first time this topic is heard (since it was last forgotten). */
  heard(device: HeardDevice, now: number): boolean {
    // A topic from the network, as a status page may show it: no control characters (terminal escapes), bounded.
    const topic = cleanText(device.topic, 256);
    const known = this.byTopic.get(topic);
    if (known) {
      known.lastHeard = now;
      known.messages++;
      // Most recently heard last, so the first one is the one to forget.
      this.byTopic.delete(topic);
      this.byTopic.set(topic, known);
      return false;
    }
    if (this.byTopic.size >= MAX_UNKNOWN_DEVICES) this.byTopic.delete(this.byTopic.keys().next().value!);
    // Only what the contract's status message can carry: a device id must be an id, a name is bounded text.
    const entry: UnknownDevice = { topic, firstHeard: now, lastHeard: now, messages: 1 };
    if (device.device !== undefined && ID_PATTERN.test(device.device)) entry.device = device.device;
    if (device.bridge !== undefined) entry.bridge = device.bridge;
    if (device.name !== undefined) entry.name = cleanText(device.name, 128);
    this.byTopic.set(topic, entry);
    return true;
  }

  /** Newest first. */
  list(): UnknownDevice[] {
    return [...this.byTopic.values()].reverse().map((d) => ({ ...d }));
  }
}
