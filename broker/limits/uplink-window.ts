import type { Aedes, AedesPublishPacket, Client, PublishPacket } from 'aedes';
import type { Clock } from '../../core/clock.js';
import type { Metrics } from '../../core/metrics.js';
import { isDeviceUplinkTopic } from '../lanes.js';

interface PerClient {
  client: Client;
  admitted: number;
  held: (() => void)[];
  queued: boolean;
  /** When it last had a publish held: a device held within QUIET_MS is one of those flooding the broker. */
  heldAt: number;
}

const QUIET_MS = 1_000;

/**
 * Backpressure for devices' own uplinks (one reading per message, from
 * thousands of them): the broker works on at most `maxInflight` of them at a
 * time. Past that, a device's next publish is held before it is queued and
 * acknowledged; Aedes reads no more of a client's socket until it has handled
 * every packet of the last read, so what the device sends next waits in its
 * TCP window and in the device, which keeps it until it has its PUBACK, not in
 * the hub's memory.
 *
 * Without it, a thousand devices with twenty publishes in flight each put
 * 20,000 publishes in the hub at once; each then took about two seconds to go
 * through, long enough for all that it allocated to outlive V8's young
 * generation, and the hub's V8 heap grew to twice its live size and more.
 *
 * A device with nothing in flight that was not held in the last QUIET_MS is
 * never held, whatever the load: a smoke detector that reports once a minute,
 * and its alarm, go through at once (the broker cannot read an uplink; the
 * gateway's profile decides whether it is an alarm), and if it sent two at
 * once, the second goes before the devices that flood. Those go on in turn,
 * so a chatty one does not keep the others waiting.
 */
export class UplinkWindow {
  private inflight = 0;
  private readonly admitted = new Map<PublishPacket, PerClient>();
  private readonly clients = new WeakMap<Client, PerClient>();
  /** Clients with publishes held, in turn. */
  private readonly turn: PerClient[] = [];
  private heldCount = 0;

  constructor(private readonly o: { maxInflight: number; metrics: Metrics; clock: Clock }) {
    // Read when scraped: no work per publish.
    o.metrics.collect('cosafe_broker_uplink_held', () => this.heldCount);
    o.metrics.collect('cosafe_broker_uplink_inflight', () => this.inflight);
  }

  /** Wraps Aedes' `authorizePublish` and `published` hooks (after authorization, before the publish is queued). */
  install(aedes: Aedes): void {
    const authorize = aedes.authorizePublish;
    aedes.authorizePublish = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void) => {
      authorize.call(aedes, client, packet, (err?: Error | null) => {
        if (err || !client || client.closed || packet.qos === 0 || !isDeviceUplinkTopic(packet.topic)) return done(err);
        this.admit(this.of(client), packet, () => done(null));
      });
    };
    const published = aedes.published;
    aedes.published = (packet: AedesPublishPacket, client: Client, done: (error?: Error | null) => void) => {
      published.call(aedes, packet, client, (err?: Error | null) => {
        this.release(packet as unknown as PublishPacket);
        done(err);
      });
    };
  }

  private of(client: Client): PerClient {
    let c = this.clients.get(client);
    if (!c) {
      c = { client, admitted: 0, held: [], queued: false, heldAt: -Infinity };
      this.clients.set(client, c);
      const state = c;
      client.conn.once('close', () => this.gone(state));
    }
    return c;
  }

  private admit(c: PerClient, packet: PublishPacket, go: () => void): void {
    const now = this.o.clock.now();
    const quiet = now - c.heldAt >= QUIET_MS;
    if ((this.inflight < this.o.maxInflight && this.heldCount === 0) || (quiet && c.admitted === 0 && c.held.length === 0)) {
      this.take(c, packet);
      return go();
    }
    c.held.push(() => {
      this.take(c, packet);
      go();
    });
    this.heldCount++;
    this.o.metrics.inc('cosafe_broker_uplink_held_total');
    c.heldAt = now;
    if (!c.queued) {
      c.queued = true;
      // A quiet device (a detector's alarm and its next message in one read) goes before those flooding.
      if (quiet) this.turn.unshift(c);
      else this.turn.push(c);
    }
  }

  private take(c: PerClient, packet: PublishPacket): void {
    c.admitted++;
    this.inflight++;
    this.admitted.set(packet, c);
  }

  private release(packet: PublishPacket): void {
    const c = this.admitted.get(packet);
    if (!c) return;
    this.admitted.delete(packet);
    c.admitted--;
    this.inflight--;
    this.next();
  }

  /** Held publishes go on while the window has room, device by device in turn. */
  private next(): void {
    while (this.inflight < this.o.maxInflight && this.turn.length > 0) {
      const c = this.turn.shift()!;
      c.queued = false;
      this.goOn(c);
    }
  }

  /**
   * All it has held at once (what one read of its socket held, a device's
   * window at most): its PUBACKs go out together and it sends its next ones
   * together, one read of the socket for many publishes, not one each.
   */
  private goOn(c: PerClient): void {
    const held = c.held.splice(0);
    this.heldCount -= held.length;
    for (const release of held) release();
  }

  /** What a device had held was never acknowledged (it sends it again); what was admitted gives its room back. */
  private gone(c: PerClient): void {
    this.heldCount -= c.held.length;
    c.held.length = 0;
    for (const [packet, a] of this.admitted) if (a === c) this.release(packet);
    this.next();
  }
}
