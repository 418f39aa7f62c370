import type { Aedes, Client, PublishPacket } from 'aedes';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { InboundJournal } from './backends/backend.js';

type Done = (error?: Error | null) => void;

/**
 * Makes the broker's PUBACK mean "it is on disk".
 *
 * Aedes answers a QoS 1 PUBLISH with PUBACK first and hands the message on
 * after (lib/handlers/publish.js: write PUBACK, then broker.publish, which
 * enqueues it for every persistent session that subscribed). A crash between
 * the two would lose a message the sender has already deleted from its own
 * outbox. So the message is published before its PUBACK:
 *
 *  1. `authorizePublish`, which Aedes runs before anything else, publishes the
 *     message once it is authorized: stored if retained, queued in the durable
 *     persistence for every persistent session that subscribed (committed
 *     before it calls back), delivered to the connected subscribers. Only then
 *     does it let Aedes send the PUBACK.
 *  2. Aedes' own `broker.publish` of that packet, after the PUBACK, is then a
 *     no-op: the message is published once.
 *
 * If queueing fails, no PUBACK is sent: the client is disconnected and sends
 * it again. A crash before the PUBACK is sent means the client sends it again
 * too (then it is delivered twice, which the contract allows: batches carry
 * gateway, boot and seq, events a stable id, and InfluxDB writes are
 * idempotent).
 *
 * Until this version the broker acknowledged first and kept an inbound journal
 * (each message written before its PUBACK and removed once queued: two more
 * durable writes per message, a fifth of the broker's CPU with a thousand
 * devices publishing). A journal left by such a broker (a crash just before an
 * upgrade; in a cluster, a broker of the older version that died, whose
 * journal another broker takes over once its liveness key has expired) is
 * still handed on: on start, before the listener opens, and in a cluster
 * every `recoverEveryMs`.
 *
 * With Redis (a cluster of brokers), "on disk" means what Redis' append-only
 * file promises (`appendfsync always`: on the disk before Redis answers;
 * `everysec`: survives a crash of Redis or of the broker, up to a second lost
 * if the machine loses power).
 *
 * Wraps whatever hooks the broker has (authentication and ACL run first, so a
 * message that is refused is never published).
 */
export async function persistBeforeAck<R>(aedes: Aedes, leftovers: InboundJournal<R>, logger: Logger, metrics: Metrics): Promise<{ stop(): void }> {
  // Aedes takes (packet, client, done); its types know only (packet, done).
  const publish = aedes.publish.bind(aedes) as unknown as (packet: PublishPacket, client: Client | null, done: Done) => void;
  /** Packets published before their PUBACK, so that Aedes' publish after it does nothing. */
  const publishedEarly = new WeakSet<object>();

  (aedes as { publish: unknown }).publish = (packet: PublishPacket, client: Client | Done | null, done?: Done) => {
    if (typeof client === 'function') [done, client] = [client, null];
    if (publishedEarly.delete(packet)) return done?.(null);
    publish(packet, client, done ?? (() => {}));
  };

  const authorize = aedes.authorizePublish;
  aedes.authorizePublish = (client: Client | null, packet: PublishPacket, done: Done) => {
    authorize.call(aedes, client, packet, (err?: Error | null) => {
      if (err || packet.qos !== 1 || !client) return done(err);
      publish(packet, client, (e?: Error | null) => {
        if (e) {
          // Not queued, so not acknowledged: the client is disconnected and sends it again.
          metrics.inc('cosafe_broker_persistence_errors_total');
          logger.error({ code: 'COSAFE_ERR_BROKER_PERSISTENCE', err: e.message, topic: packet.topic }, 'broker could not queue a message; refusing it');
          return done(e);
        }
        publishedEarly.add(packet);
        done(null);
      });
    });
  };

  const replay = async () => {
    const pending = await leftovers.journalEntries();
    for (const entry of pending) {
      await new Promise<void>((resolve, reject) => publish(entry.packet as unknown as PublishPacket, null, (err) => (err ? reject(err) : resolve())));
      await leftovers.journalRemove(entry.ref);
    }
    if (pending.length) {
      metrics.inc('cosafe_broker_journal_replayed_total', {}, pending.length);
      logger.warn({ messages: pending.length }, 'broker handed on messages an earlier version of it (or a broker of its cluster that died) had acknowledged just before a crash');
    }
  };
  await replay();
  if (!leftovers.recoverEveryMs) return { stop: () => {} };
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= replay()
      .catch((err: Error) => logger.warn({ err: err.message }, "broker could not take over a dead broker's journal; trying again"))
      .finally(() => (running = undefined));
  }, leftovers.recoverEveryMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
