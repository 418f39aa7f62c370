import { randomBytes } from 'node:crypto';
import type { AlarmEvent } from '../../broker/contract/index.js';

/** An alarm event as a gateway sends it, with a fresh event id unless one is given. */
export function alarmEvent(overrides: Partial<AlarmEvent> = {}): AlarmEvent {
  return {
    v: 1,
    eventId: `evt_${randomBytes(16).toString('hex')}`,
    gateway: 'gw-1',
    site: 'site-a',
    device: 'smoke-1',
    profile: 'mqtt-smoke-detector',
    condition: 'smoke',
    class: 'fire',
    state: 'active',
    metric: 'smoke',
    value: 1,
    unit: 'bool',
    time: Date.now(),
    location: '1F kitchen',
    ...overrides,
  };
}
