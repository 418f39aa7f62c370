import type { Aedes, AedesPublishPacket, Client, PublishPacket } from 'aedes';
import type { Metrics } from '../../core/metrics.js';
import { isTelemetryTopic } from '../lanes.js';

/** Aedes clients can stop reading their socket; not in its type declarations. */
type Pausable = Client & { pause(): void; resume(): void };

interface Held {
  client: Pausable;
  bytes: number;
  packet: PublishPacket;
  go: () => void;
}

/**
 * Backpressure for telemetry: the broker takes at most `maxBytes` of reading
 * batches that it has not yet handed on to every subscriber (written to each
 * live subscriber's socket, or queued on disk for a persistent session that is
 * away). A batch past that is held before it is journaled and acknowledged,
 * and the gateway that sent it is paused (Aedes reads no more of its socket),
 * so the TCP window fills and the batches wait on the gateway's disk, in its
 * outbox, not in the hub's memory. It goes on, first held first, as soon as
 * the window has room.
 *
 * Without it, Aedes reads every client far ahead of its subscribers: the
 * deliveries to cloud-sync's telemetry session pile up in its socket buffer
 * and in the broker's message queue, which the alarm lane shares, so an alarm
 * waited there behind hundreds of batches, and the hub's memory grew with the
 * burst.
 *
 * Only publishes on a readings topic (QoS 1) count; events, status and
 * everything else pass straight through. One window for the broker: it bounds
 * the hub's memory whatever the number of gateways.
 */
export class TelemetryWindow {
  private bytes = 0;
  private readonly admitted = new Map<PublishPacket, { client: Pausable; bytes: number }>();
  private readonly held: Held[] = [];
  private readonly watched = new WeakSet<Client>();

  constructor(private readonly o: { maxBytes: number; metrics: Metrics }) {}

  /** Wraps Aedes' `authorizePublish` and `published` hooks (after authorization, before the journal). */
  install(aedes: Aedes): void {
    const authorize = aedes.authorizePublish;
    aedes.authorizePublish = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void) => {
      authorize.call(aedes, client, packet, (err?: Error | null) => {
        if (err || !client || client.closed || packet.qos === 0 || !isTelemetryTopic(packet.topic)) return done(err);
        this.admit(client as Pausable, packet, () => done(null));
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

  /** Publishes held back now. */
  get heldCount(): number {
    return this.held.length;
  }

  private admit(client: Pausable, packet: PublishPacket, go: () => void): void {
    const bytes = packet.payload.length;
    // Always one at a time at least: a batch larger than the window still gets through.
    if (this.held.length === 0 && (this.bytes + bytes <= this.o.maxBytes || this.admitted.size === 0)) {
      this.take(client, packet, bytes);
      return go();
    }
    if (!this.held.some((h) => h.client === client)) client.pause();
    this.watch(client);
    this.held.push({ client, bytes, packet, go });
    this.gauges();
  }

  private take(client: Pausable, packet: PublishPacket, bytes: number): void {
    this.bytes += bytes;
    this.admitted.set(packet, { client, bytes });
    this.watch(client);
    this.gauges();
  }

  private release(packet: PublishPacket): void {
    const a = this.admitted.get(packet);
    if (!a) return;
    this.admitted.delete(packet);
    this.bytes -= a.bytes;
    this.next();
  }

  /** Admits held publishes, first held first, while the window has room. */
  private next(): void {
    while (this.held.length > 0) {
      const h = this.held[0]!;
      if (this.bytes + h.bytes > this.o.maxBytes && this.admitted.size > 0) break;
      this.held.shift();
      this.take(h.client, h.packet, h.bytes);
      if (!this.held.some((x) => x.client === h.client)) h.client.resume();
      h.go();
    }
    this.gauges();
  }

  /**
   * When a client goes: what it had held was never acknowledged (its outbox
   * still has it), and what was admitted but not yet published is dropped by
   * Aedes if its PUBACK could not be written (the gateway sends it again): both
   * give their room back.
   */
  private watch(client: Pausable): void {
    if (this.watched.has(client)) return;
    this.watched.add(client);
    client.conn.once('close', () => {
      for (let i = this.held.length - 1; i >= 0; i--) if (this.held[i]!.client === client) this.held.splice(i, 1);
      for (const [packet, a] of this.admitted) if (a.client === client) this.release(packet);
      this.next();
    });
  }

  private gauges(): void {
    this.o.metrics.set('cosafe_broker_telemetry_held', {}, this.held.length);
    this.o.metrics.set('cosafe_broker_telemetry_inflight_bytes', {}, this.bytes);
  }
}
