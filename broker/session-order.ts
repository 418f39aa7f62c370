import type { Aedes, AedesPublishPacket, Client, ConnectPacket } from 'aedes';
import { isTelemetryTopic } from './lanes.js';

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;
/** Aedes' per-client delivery function for QoS 1 and 2, set in its constructor; not in its type declarations. */
type Delivering = Client & { deliverQoS: Deliver };

interface Restoring {
  /** Aedes' own delivery function of the client. */
  deliver: Deliver;
  /** Live messages published while the session's queue goes out, in the order they came. */
  held: AedesPublishPacket[];
  /** Messages the queue sent (brokerId:brokerCounter), so a held one it already sent is not sent twice. */
  sent: Set<string>;
}

const identity = (p: { brokerId?: string; brokerCounter?: number }) => `${p.brokerId}:${p.brokerCounter}`;

/**
 * A persistent session that comes back gets its messages in the order they
 * were published: first what was queued for it while it was away, then what
 * was published meanwhile.
 *
 * Aedes restores a returning session's subscriptions, sends the CONNACK, and
 * only then streams its queue; a message published in between was written to
 * the client at once, ahead of older ones still in the queue (measured: of
 * 2,000 queued events and 300 published while they went out, 292 arrived
 * before older ones). For cloud-sync's alarm lane after a restart, that is a
 * smoke detector's "active" overtaking the "cleared" queued before it: the
 * alarm ends as cleared while the detector is in alarm.
 *
 * So until the queue has gone out (Aedes' `clientReady`), a live QoS 1 or 2
 * message of the alarm lane (events, status, device uplinks, dispatch) for a
 * persistent session is held here, then delivered in order,
 * unless the queue already sent it (it was queued before it was delivered
 * live: every persistent session's copy is stored before delivery). Its
 * publisher is not kept waiting: the message is stored for the session
 * already, so a connection lost before it is delivered loses nothing: it
 * goes out with the queue at the next connect.
 *
 * Reading batches are not held: their order does not matter (each carries its
 * gateway, boot and sequence number, each reading its time), and a telemetry
 * backlog can take minutes to go out, while live batches would pile up here,
 * past the broker's telemetry window.
 */
export function keepSessionOrder(aedes: Aedes): void {
  const restoring = new WeakMap<Client, Restoring>();
  const { persistence } = aedes as unknown as { persistence: { outgoingUpdate(client: Client, packet: AedesPublishPacket): Promise<unknown> } };
  const update = persistence.outgoingUpdate.bind(persistence);
  // Every message the queue sends gets its packet id here first (Aedes' emptyQueue); live ones are held meanwhile.
  persistence.outgoingUpdate = (client, packet) => {
    restoring.get(client)?.sent.add(identity(packet));
    return update(client, packet);
  };

  const preConnect = aedes.preConnect;
  aedes.preConnect = (client: Client, packet: ConnectPacket, done: (error: Error | null, ok: boolean) => void) => {
    if (packet.clean === false) holdLive(client as Delivering);
    preConnect.call(aedes, client, packet, done);
  };
  aedes.on('clientReady', (client) => release(client as Delivering));

  function holdLive(client: Delivering): void {
    const deliver = client.deliverQoS;
    const r: Restoring = { deliver, held: [], sent: new Set() };
    restoring.set(client, r);
    // Before Aedes subscribes the session again: it subscribes this very function, so the wrapper stays for the connection's life.
    client.deliverQoS = (packet, done) => {
      if (restoring.get(client) !== r || packet.qos === 0 || isTelemetryTopic(packet.topic)) return deliver(packet, done);
      r.held.push(packet);
      done();
    };
    // A connection that fails or ends before it is ready: the held messages are in the session's queue for the next one.
    client.conn.once('close', () => restoring.delete(client));
  }

  function release(client: Delivering): void {
    const r = restoring.get(client);
    if (!r) return;
    restoring.delete(client);
    for (const packet of r.held) if (!r.sent.has(identity(packet))) r.deliver(packet, noop);
  }
}

function noop(): void {}
