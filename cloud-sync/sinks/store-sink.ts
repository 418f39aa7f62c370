import type { ReadingStore } from '../reading-store.js';
import type { Sink } from './sink.js';

/** Readings and events into the reading store (InfluxDB through its on-disk buffer, or the local SQLite store). */
export function storeSink(store: ReadingStore): Sink {
  return {
    name: 'store',
    start: () => store.start(),
    stop: () => store.stop(),
    onEvent: (event) => store.writeEvent(event),
    onBatch: (batch) => store.writeBatch(batch),
  };
}
