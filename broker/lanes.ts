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

/**
 * The alarm lane without device uplinks: gateways' events and status,
 * acknowledgements, dispatch. Few messages, each worth its own commit
 * (sqlite-persistence.ts `isUrgent`); device uplinks come by the thousand and
 * share one commit per turn of the event loop.
 */
export function isUrgentTopic(topic: string): boolean {
  const kind = parseTopic(topic)?.kind;
  return kind !== 'readings' && kind !== 'deviceUplink';
}
