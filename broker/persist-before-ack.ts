import type { Aedes, AedesPublishPacket, Client, PublishPacket } from 'aedes';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { InboundJournal } from './backends/backend.js';

/**
 * Makes the broker's PUBACK mean "it is on disk".
 *
 * Aedes answers a QoS 1 PUBLISH with PUBACK first and hands the message on
 * after (lib/handlers/publish.js: write PUBACK, then broker.publish, which
 * enqueues it for every persistent session that subscribed, then calls the
 * `published` hook). A crash between the two would lose a message the sender
 * has already deleted from its own outbox. So:
 *
 *  1. `authorizePublish`, which Aedes runs before anything else, writes the
 *     message to the journal (SQLite, committed before it calls back), and
 *     only then lets Aedes send the PUBACK.
 *  2. Aedes enqueues it for the persistent sessions (cloud-sync's queue in the
 *     durable persistence), then calls `published`, which takes it out of the
 *     journal.
 *  3. On start, before the listener opens, whatever is still in the journal is
 *     published again: it was acknowledged, but may not have reached the queues.
 *
 * At any moment of a crash the message is in the journal, in the queues, or in
 * both (then it is delivered twice, which the contract allows: batches carry
 * gateway, boot and seq, events a stable id, and InfluxDB writes are
 * idempotent). Each lane's journal and queues share one SQLite WAL (telemetry
 * topics have a file of their own), so a later write never survives without an
 * earlier one.
 *
 * With Redis (a cluster of brokers) the journal is in Redis, one per broker
 * process, and "on disk" means what Redis' append-only file promises
 * (`appendfsync always`: on the disk before Redis answers; `everysec`: survives
 * a crash of Redis or of the broker, up to a second lost if the machine loses
 * power). A broker that dies leaves its journal behind; another broker takes
 * it over (step 3, every `recoverEveryMs`) once the dead one's liveness key has
 * expired, so nothing it acknowledged waits for it to come back.
 *
 * Wraps whatever hooks the broker has (authentication and ACL run first, so a
 * message that is refused is never journaled).
 */
export async function persistBeforeAck<R>(aedes: Aedes, store: InboundJournal<R>, logger: Logger, metrics: Metrics): Promise<{ stop(): void }> {
  const journalIds = new WeakMap<object, R>();

  const authorize = aedes.authorizePublish;
  aedes.authorizePublish = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void) => {
    authorize.call(aedes, client, packet, (err?: Error | null) => {
      if (err || packet.qos !== 1) return done(err);
      store.journalAppend(packet as never).then(
        (ref) => {
          journalIds.set(packet, ref);
          done(null);
        },
        (e: Error) => {
          // Not on disk, so not acknowledged: the client is disconnected and sends it again.
          metrics.inc('cosafe_broker_persistence_errors_total');
          logger.error({ code: 'COSAFE_ERR_BROKER_PERSISTENCE', err: e.message, topic: packet.topic }, 'broker could not journal a message; refusing it');
          done(e);
        },
      );
    });
  };

  const published = aedes.published;
  aedes.published = (packet: AedesPublishPacket, client: Client, done: (error?: Error | null) => void) => {
    const ref = journalIds.get(packet);
    if (ref !== undefined) {
      journalIds.delete(packet);
      // Left in the journal if this fails: replayed after a restart, which is a harmless duplicate.
      store.journalRemove(ref).catch((e: Error) => logger.warn({ err: e.message }, 'broker could not clear a journal entry'));
    }
    published.call(aedes, packet, client, done);
  };

  const replay = async () => {
    const pending = await store.journalEntries();
    for (const entry of pending) {
      await new Promise<void>((resolve, reject) => aedes.publish(entry.packet as unknown as PublishPacket, (err) => (err ? reject(err) : resolve())));
      await store.journalRemove(entry.ref);
    }
    if (pending.length) {
      metrics.inc('cosafe_broker_journal_replayed_total', {}, pending.length);
      logger.warn({ messages: pending.length }, 'broker handed on messages it (or a broker of its cluster that died) had acknowledged just before a crash');
    }
  };
  await replay();
  if (!store.recoverEveryMs) return { stop: () => {} };
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= replay()
      .catch((err: Error) => logger.warn({ err: err.message }, "broker could not take over a dead broker's journal; trying again"))
      .finally(() => (running = undefined));
  }, store.recoverEveryMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
