import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricCatalog } from '../../../core/metric-catalog.js';
import { Metrics } from '../../../core/metrics.js';

describe('metric catalog', () => {
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `(cosafe_[a-z_]+)` \|/gm)].map((m) => m[1]);

  it('documents every metric, and documents no metric that does not exist', () => {
    expect(new Set(documented)).toEqual(new Set(Object.keys(metricCatalog)));
  });

  it('names every metric cosafe_..., counters ending in _total, histograms in a unit', () => {
    for (const [name, def] of Object.entries(metricCatalog)) {
      expect(name).toMatch(/^cosafe_[a-z0-9_]+$/);
      if (def.kind === 'counter') expect(name).toMatch(/_total$/);
      if (def.kind === 'histogram') expect(name).toMatch(/_seconds$|_bytes$/);
    }
  });
});

describe('metrics', () => {
  it('renders counters, gauges and histograms with the help text of the catalog', async () => {
    const m = new Metrics();
    m.inc('cosafe_edge_decode_errors_total', { device: 'temp-1' });
    m.inc('cosafe_edge_decode_errors_total', { device: 'temp-1' }, 2);
    m.set('cosafe_influx_buffered_points', { lane: 'telemetry' }, 1519);
    m.observe('cosafe_alarm_delivery_latency_seconds', { class: 'fire', channel: 'webhook' }, 0.004);
    const text = await m.render();
    expect(text).toContain(`# HELP cosafe_edge_decode_errors_total ${metricCatalog.cosafe_edge_decode_errors_total.help}`);
    expect(text).toMatch(/^cosafe_edge_decode_errors_total\{device="temp-1"\} 3$/m);
    expect(text).toMatch(/^cosafe_influx_buffered_points\{lane="telemetry"\} 1519$/m);
    expect(text).toMatch(/^cosafe_alarm_delivery_latency_seconds_bucket\{le="0.005",class="fire",channel="webhook"\} 1$/m);
    expect(text).toMatch(/^cosafe_alarm_delivery_latency_seconds_bucket\{le="0.0025",class="fire",channel="webhook"\} 0$/m);
    expect(m.get('cosafe_edge_decode_errors_total', { device: 'temp-1' })).toBe(3);
    expect(m.total('cosafe_alarm_delivery_latency_seconds')).toBe(1);
  });

  it('reads a collected gauge at every scrape, not when it was last set', async () => {
    const m = new Metrics();
    let buffered = 574;
    const remove = m.collect('cosafe_influx_buffered_points', () => buffered);
    expect(await m.render()).toMatch(/^cosafe_influx_buffered_points 574$/m);
    buffered = 1519;
    expect(await m.render()).toMatch(/^cosafe_influx_buffered_points 1519$/m);
    expect(m.get('cosafe_influx_buffered_points')).toBe(1519);
    remove();
    buffered = 0;
    // Removed: the last value read stays, as a gauge set by hand would.
    expect(await m.render()).toMatch(/^cosafe_influx_buffered_points 1519$/m);
  });

  it('exports the event loop delay of the process when asked', async () => {
    const text = await new Metrics({ process: true }).render();
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
  });
});
