/**
 * What a bridge says about a device's (or its own) availability: zigbee2mqtt
 * publishes `online` / `offline`, or `{"state":"online"}` since its JSON
 * availability payloads; undefined for anything else.
 */
export function readAvailability(payload: Buffer | string): 'online' | 'offline' | undefined {
  const text = (typeof payload === 'string' ? payload : payload.toString('utf8')).trim();
  if (text === 'online' || text === 'offline') return text;
  try {
    const state = (JSON.parse(text) as { state?: unknown } | null)?.state;
    return state === 'online' || state === 'offline' ? state : undefined;
  } catch {
    return undefined;
  }
}
