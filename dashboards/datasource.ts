/**
 * The one data source every panel, target, variable and annotation names:
 * provisioned with this fixed uid (provisioning.ts), so that Grafana's file
 * provisioning loads the dashboards as they are (no import step, no
 * `${DS_...}` placeholder, no "datasource not found").
 */
export const DATASOURCE_UID = 'cosafe-influxdb';
export const DATASOURCE_TYPE = 'influxdb';
export const datasource = { type: DATASOURCE_TYPE, uid: DATASOURCE_UID };

/** The hub records its own operations, gateways and open alarms this often by default (cloudSync.timeSeries.intervalSeconds): Grafana's min interval. */
export const RECORD_INTERVAL = '10s';
/**
 * "Now" is read from the last 3 minutes of the points recorded every interval
 * (at most a minute apart, core/time-series-config.ts): three chances to have one.
 */
export const NOW_LOOKBACK = '3m';
