import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timeSeries } from '../../broker/contract/index.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { startFireHub, type FireHub } from '../helpers/fire-hub.js';
import { startInfluxDB, type InfluxServer } from '../helpers/influxdb.js';
import { waitUntil } from '../helpers/processes.js';

/** Agencies' summaries land in a real InfluxDB 1.x, under the names the contract declares, for dashboards. */
let influx: InfluxServer;
let hub: FireHub;

beforeAll(async () => {
  influx = await startInfluxDB();
  hub = await startFireHub({
    sites: [{ id: 'depot-3', name: 'Depot Süd', address: 'Südring 3, 12345 Berlin', location: { lat: 52.41, lon: 13.4 }, district: 'south' }],
    cloudSync: { influx: { url: influx.url, database: 'agency', flushIntervalMs: 20 }, agency: { intervalSeconds: 5 } },
  });
});

afterAll(async () => {
  await hub?.close();
  await influx?.stop();
});

describe('agency records in InfluxDB', () => {
  it('records each district\'s summary, and its alarms per class and day at the day\'s start', async () => {
    const gw = await hub.credential({ role: 'gateway', id: 'depot-3.gw-1', site: 'depot-3', gateway: 'gw-1' });
    await hub.publishEvent(gw, alarmEvent({ site: 'depot-3', device: 'smoke-2' }));
    const m = timeSeries.agencyAlarmsDaily.measurement;
    let rows: unknown[][] = [];
    await waitUntil('the day\'s fire alarm in InfluxDB', async () => {
      rows = (await influx.query(`SELECT "count" FROM ${m} WHERE district = 'south' AND "class" = 'fire'`, 'agency'))[0]?.values ?? [];
      return rows.length === 1 && rows[0]![1] === 1;
    }, 30_000);
    expect(Number(rows[0]![0]) % 86_400_000).toBe(0);
    const summary = await influx.query(`SELECT sites_registered, alarms_unacknowledged FROM ${timeSeries.agencySummary.measurement} WHERE district = 'south'`, 'agency');
    expect(summary[0]!.values.at(-1)!.slice(1)).toEqual([1, 1]);
  });
});
