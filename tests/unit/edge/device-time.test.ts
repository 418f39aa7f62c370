import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { buildConfig } from '../../../core/config.js';
import { Metrics } from '../../../core/metrics.js';
import { DeviceTimeCheck } from '../../../edge/device-time.js';

const NOW = Date.UTC(2026, 10, 27, 12);
const MIN = 60_000;

function check() {
  const lines: { code?: string; device?: string; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  const metrics = new Metrics();
  const bounds = buildConfig({}).gateway.deviceTime;
  return { lines, metrics, bounds, t: new DeviceTimeCheck({ bounds, logger, metrics }) };
}

describe('device time check', () => {
  it('defaults to 5 minutes ahead and 7 days behind the gateway clock', () => {
    expect(check().bounds).toEqual({ maxAheadMs: 5 * MIN, maxBehindMs: 7 * 24 * 60 * MIN });
  });

  it('believes times within the bounds and not beyond, in both directions, counted per device', () => {
    const { t, metrics } = check();
    expect([NOW, NOW + 5 * MIN, NOW - 7 * 24 * 60 * MIN, NOW - 1000].map((time) => t.plausible('a', time, NOW))).toEqual([true, true, true, true]);
    expect([NOW + 5 * MIN + 1, 9e15, 0, NOW - 8 * 24 * 60 * MIN].map((time) => t.plausible('a', time, NOW))).toEqual([false, false, false, false]);
    expect(t.plausible('b', 9e15, NOW)).toBe(false);
    expect(metrics.get('cosafe_edge_device_time_rejected_total', { device: 'a' })).toBe(4);
    expect(metrics.get('cosafe_edge_device_time_rejected_total', { device: 'b' })).toBe(1);
  });

  it('logs once when a device clock goes wrong and once when it is right again', () => {
    const { t, lines } = check();
    for (let i = 0; i < 5; i++) t.plausible('a', 9e15, NOW);
    t.plausible('a', NOW, NOW);
    t.plausible('a', NOW, NOW);
    expect(lines.map((l) => [l.code, l.device])).toEqual([
      ['COSAFE_ERR_DEVICE_TIME', 'a'],
      [undefined, 'a'],
    ]);
  });
});
