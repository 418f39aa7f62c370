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
  /** Points waiting in the on-disk buffer for InfluxDB. */
  buffered?: number;
  /** Points InfluxDB rejected as invalid, set aside. */
  rejected?: number;
  /** While writes to InfluxDB back off: the wait chosen before the next attempt. */
  backoffMs?: number;
}

/**
 * Where cloud-sync keeps readings: InfluxDB when one is configured, the local
 * SQLite store otherwise. Both can be read back for the HTTP API.
 *
 * `writeBatch` and `writeEvent` return true once what they got is on disk
 * (InfluxDB's durable buffer or the local store): only then does cloud-sync
 * acknowledge the message to the broker. False: not stored (the disk failed).
 */
export interface ReadingStore {
  start(): Promise<void>;
  writeBatch(batch: ReadingBatch): boolean;
  writeEvent(event: AlarmEvent): boolean;
  /** InfluxDB only: records of the hub itself (agency summaries) as line protocol. */
  writeRecords?(lines: readonly string[]): boolean;
  latest(filter: { site?: string; device?: string }): Promise<StoredReading[]>;
  history(query: HistoryQuery): Promise<StoredReading[]>;
  health(): StoreHealth;
  stop(): Promise<void>;
}
