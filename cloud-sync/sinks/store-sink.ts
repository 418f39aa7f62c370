import type { ReadingStore } from '../reading-store.js';
import type { Lane, Sink } from './sink.js';

/** A lane's writes into the reading store: events on the alarm lane, batches on the telemetry lane. */
export function storeSink(store: ReadingStore, lane: Lane): Sink {
  const common = { name: 'store', start: () => store.start(), stop: () => store.stop() };
  return lane === 'alarm' ? { ...common, onEvent: (event) => store.writeEvent(event) } : { ...common, onBatch: (batch) => store.writeBatch(batch) };
}
