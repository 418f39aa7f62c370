import { parseTopic, type ParsedTopic } from './contract/index.js';

/**
 * The broker's two lanes (ARCHITECTURE.md, delivery classes): reading batches
 * are telemetry; everything else (events, status, commands, dispatch) is the
 * alarm lane, which telemetry must never hold up: not in the broker's window
 * (limits/telemetry-window.ts), not in its files (sqlite-persistence.ts).
 */
export function isTelemetryTopic(topic: string): boolean {
  return kindOf(topic) === 'readings';
}

/** A device's own uplink (its raw messages, which the gateway's profile decodes): bounded by limits/uplink-window.ts. */
export function isDeviceUplinkTopic(topic: string): boolean {
  return kindOf(topic) === 'deviceUplink';
}

type Kind = ParsedTopic['kind'] | null;

/**
 * Asked several times for every message, of topics that repeat (one per
 * device or gateway): remembered, within bounds, so that no message splits
 * its topic again.
 */
function kindOf(topic: string): Kind {
  let kind = seen.get(topic);
  if (kind === undefined) {
    kind = parseTopic(topic)?.kind ?? null;
    if (seen.size >= SEEN_MAX) seen.clear();
    seen.set(topic, kind);
  }
  return kind;
}

const SEEN_MAX = 50_000;
const seen = new Map<string, Kind>();
