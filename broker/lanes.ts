import { parseTopic } from './contract/index.js';

/**
 * The broker's two lanes (ARCHITECTURE.md, delivery classes): reading batches
 * are telemetry; everything else (events, status, commands, dispatch) is the
 * alarm lane, which telemetry must never hold up: not in the broker's window
 * (limits/telemetry-window.ts), not in its files (sqlite-persistence.ts).
 */
export function isTelemetryTopic(topic: string): boolean {
  let telemetry = seen.get(topic);
  if (telemetry === undefined) {
    telemetry = parseTopic(topic)?.kind === 'readings';
    // Asked several times for every message, of topics that repeat (one per device or gateway): remembered, within bounds.
    if (seen.size >= SEEN_MAX) seen.clear();
    seen.set(topic, telemetry);
  }
  return telemetry;
}

const SEEN_MAX = 50_000;
const seen = new Map<string, boolean>();
