import { parseTopic } from './contract/index.js';

/**
 * The broker's two lanes (ARCHITECTURE.md, delivery classes): reading batches
 * are telemetry; everything else (events, status, commands, dispatch) is the
 * alarm lane, which telemetry must never hold up: not in the broker's window
 * (limits/telemetry-window.ts), not in its files (sqlite-persistence.ts).
 */
export function isTelemetryTopic(topic: string): boolean {
  return parseTopic(topic)?.kind === 'readings';
}
