import type { AlarmEvent, ReadingBatch } from '../broker/contract/index.js';

/** A reading as the hub gives it back. */
export interface StoredReading {
  site: string;
  device: string;
  metric: string;
  value: number;
  unit: string;
  quality: string;
  time: number;
}

export interface HistoryQuery {
  site?: string;
  device: string;
  metric: string;
  /** Epoch ms; default: one hour ago. */
  since?: number;
  limit?: number;
}

export interface StoreHealth {
  kind: 'influxdb' | 'sqlite';
  ok: boolean;
  detail?: string;
  buffered?: number;
}

/**
 * Where cloud-sync keeps readings: InfluxDB when one is configured, the local
 * SQLite store otherwise. Both can be read back for the HTTP API.
 */
export interface ReadingStore {
  start(): Promise<void>;
  writeBatch(batch: ReadingBatch): void;
  writeEvent(event: AlarmEvent): void;
  latest(filter: { site?: string; device?: string }): Promise<StoredReading[]>;
  history(query: HistoryQuery): Promise<StoredReading[]>;
  health(): StoreHealth;
  stop(): Promise<void>;
}
