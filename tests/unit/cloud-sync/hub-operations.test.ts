import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import { HubOperations, intervalQuantile } from '../../../cloud-sync/time-series/hub-operations.js';
import { ManualTime } from '../../helpers/manual-time.js';

/** The hub's operations as InfluxDB points: what each interval counted, and latency quantiles as Prometheus estimates them. */
describe('intervalQuantile', () => {
  const h = (counts: [number, number][], sum = 0) => ({ buckets: counts.map(([le, count]) => ({ le, count })), sum, count: counts.at(-1)![1] });

  it('interpolates within the bucket the rank falls in, over the observations of the interval only', () => {
    const before = h([[1, 10], [5, 10], [Infinity, 10]]);
    const now = h([[1, 10], [5, 14], [Infinity, 14]]);
    // 4 new observations, all in (1, 5]: the median is half-way through that bucket.
    expect(intervalQuantile(before, now, 0.5)).toBe(3);
    expect(intervalQuantile(before, now, 1)).toBe(5);
  });

  it('answers the highest finite bound for the +Inf bucket, and nothing without observations', () => {
    expect(intervalQuantile(undefined, h([[1, 0], [5, 0], [Infinity, 2]]), 0.5)).toBe(5);
    const same = h([[1, 3], [Infinity, 3]]);
    expect(intervalQuantile(same, same, 0.9)).toBeNull();
  });
});

describe('HubOperations', () => {
  it('records counters as what happened during the interval, gauges as they are, and every gateway heard of', async () => {
    const metrics = new Metrics();
    const time = new ManualTime();
    const lines: string[] = [];
    const hub = new HubOperations({ metrics, clock: time, logger: silentLogger, instance: 'hub-1', intervalSeconds: 10, pendingDeliveries: () => 2, write: (l) => (lines.push(...l), true) });
    metrics.inc('cosafe_sync_readings_received_total', {}, 100);
    metrics.inc('cosafe_sync_events_received_total', { class: 'fire' }, 4);
    await hub.start();
    await hub.stop(); // no timer: the test records each interval itself
    metrics.inc('cosafe_sync_readings_received_total', {}, 35);
    // Summed over label sets: two classes of events.
    metrics.inc('cosafe_sync_events_received_total', { class: 'fire' }, 2);
    metrics.inc('cosafe_sync_events_received_total', { class: 'trouble' }, 3);
    metrics.set('cosafe_broker_connections', {}, 7);
    hub.onStatus({ v: 1, site: 'bakery', gateway: 'gw-1', state: 'online', boot: 'b1', since: time.now() });
    hub.onStatus({ v: 1, site: 'depot', gateway: 'gw-2', state: 'offline', boot: 'b1', since: time.now() });
    time.advance(10_000);
    await hub.record();
    const point = lines.find((l) => l.startsWith('hub,'))!;
    expect(point).toMatch(/^hub,instance=hub-1 /);
    expect(point).toContain('readings_received=35i');
    expect(point).toContain('events_received=5i');
    expect(point).toContain('interval_seconds=10');
    expect(point).toContain('broker_connections=7');
    expect(point).toContain('pending_deliveries=2i');
    expect(point).toContain('gateways_online=1i');
    expect(point).toContain('gateways_offline=1i');
    expect(point.endsWith(` ${time.now()}`) || point.endsWith(` ${time.now()}000000`)).toBe(true);
    const gateways = lines.filter((l) => l.startsWith('hub_gateway,'));
    expect(gateways).toHaveLength(2);
    expect(gateways.find((l) => l.includes('gateway=gw-2'))).toContain('online=0i');
    lines.length = 0;
    time.advance(10_000);
    await hub.record();
    expect(lines.find((l) => l.startsWith('hub,'))).toContain('readings_received=0i');
  });
});
