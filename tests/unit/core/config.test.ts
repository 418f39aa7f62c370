import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfigFile } from '../../../core/config.js';
import { CosafeError } from '../../../core/errors.js';

function file(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'cosafe-config-')), 'cosafe.yaml');
  writeFileSync(f, text);
  return f;
}

function errorOf(fn: () => unknown): CosafeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CosafeError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('config', () => {
  it('fills defaults and freezes the result', () => {
    const c = buildConfig({}, '/srv/cosafe');
    expect(c.broker.port).toBe(1883);
    expect(c.dataDir).toBe('/srv/cosafe/.cosafe');
    expect(c.cloudSync.influx).toBeUndefined();
    expect(Object.isFrozen(c.gateway.batch)).toBe(true);
  });

  it('takes one hub broker or the brokers of a cluster, and says which entry of the list is wrong', () => {
    expect(buildConfig({ gateway: { brokerUrl: 'mqtt://hub:1883' } }).gateway.brokerUrl).toBe('mqtt://hub:1883');
    expect(buildConfig({ gateway: { brokerUrl: ['mqtt://a:1883', 'mqtt://b:1883'] } }).gateway.brokerUrl).toEqual(['mqtt://a:1883', 'mqtt://b:1883']);
    const err = errorOf(() => buildConfig({ cloudSync: { brokerUrl: ['mqtt://a:1883', 'http://b'] } }));
    expect(err.details.join('\n')).toMatch(/cloudSync\.brokerUrl/);
    expect(errorOf(() => buildConfig({ gateway: { brokerUrl: [] } })).details.join('\n')).toMatch(/gateway\.brokerUrl/);
  });

  it('takes cloudSync.partitions only with residents\' alerts and agency summaries off, and names each field that is wrong', () => {
    const partitions = { count: 8, redisUrl: 'redis://10.0.0.5:6379/0', workerId: 'sync-1' };
    const ok = buildConfig({ cloudSync: { partitions, public: { enabled: false }, agency: { enabled: false } } });
    expect(ok.cloudSync.partitions).toEqual({ ...partitions, leaseTtlMs: 10_000 });
    // Without the section: one worker, as before.
    expect(buildConfig({}).cloudSync.partitions).toBeUndefined();
    // Each worker would overwrite the retained cell alerts and district summaries with its own part.
    const feeds = errorOf(() => buildConfig({ cloudSync: { partitions } })).details.join('\n');
    expect(feeds).toMatch(/cloudSync\.public\.enabled: .*not yet split/);
    expect(feeds).toMatch(/cloudSync\.agency\.enabled: .*not yet split/);
    const bad = errorOf(() => buildConfig({ cloudSync: { partitions: { count: 0, redisUrl: 'http://x' }, public: { enabled: false }, agency: { enabled: false } } })).details.join('\n');
    expect(bad).toMatch(/cloudSync\.partitions\.count/);
    expect(bad).toMatch(/cloudSync\.partitions\.redisUrl: must be a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('resolves paths relative to the config file', () => {
    const f = file('dataDir: state\n');
    expect(loadConfigFile(f).dataDir).toBe(join(f, '..', 'state'));
  });

  it('reports every error at once with file, line and field', () => {
    const f = file(['broker:', '  port: 70000', 'gateway:', '  site: "bad/site"', 'cloudSync:', '  fireDepartments:', '    - id: fd', '      url: http://fd.example/alarms', '      secret: plain', 'typo: 1', ''].join('\n'));
    const err = errorOf(() => loadConfigFile(f));
    expect(err.code).toBe('COSAFE_ERR_CONFIG_INVALID');
    expect(err.details).toEqual([
      expect.stringMatching(new RegExp(`^${f}:2 broker.port: `)),
      expect.stringMatching(new RegExp(`^${f}:4 gateway.site: must be 1-64 letters`)),
      `${f}:9 cloudSync.fireDepartments[0].secret: must be a Standard Webhooks secret: "whsec_" then base64`,
      expect.stringMatching(new RegExp(`^${f}:1 \\(root\\): Unrecognized key: "typo"`)),
    ]);
  });

  it('runs a TCP listener on broker.port by default, and nothing else', () => {
    const c = buildConfig({ broker: { host: '127.0.0.1', port: 1884 } });
    expect(c.broker.listeners.tcp).toMatchObject({ enabled: true, host: '127.0.0.1', port: 1884 });
    expect(c.broker.listeners.tcp.roles).not.toContain('resident');
    // Owners and monitors use the HTTP API only: no MQTT listener admits them unless told to.
    for (const l of [c.broker.listeners.tcp, c.broker.listeners.tls]) expect(l.roles).not.toEqual(expect.arrayContaining(['owner']));
    expect(c.broker.listeners.tcp.roles).not.toContain('monitor');
    expect(c.broker.listeners.tcp.roles).toContain('fire-department');
    expect(c.broker.listeners.tls.enabled).toBe(false);
    expect(c.broker.listeners.ws).toMatchObject({ enabled: false, port: 9001, path: '/mqtt', roles: ['resident'] });
    expect(buildConfig({ broker: { port: 1884, listeners: { tcp: { port: 1885 } } } }).broker.listeners.tcp.port).toBe(1885);
  });

  it('admits anonymous residents on the WebSocket listener only, and wants TLS files', () => {
    const err = errorOf(() =>
      buildConfig({ broker: { listeners: { tcp: { roles: ['gateway', 'resident'] }, tls: { enabled: true, requestClientCert: true } } } }, '/srv', 'x.yaml'),
    );
    expect(err.details).toEqual([
      'x.yaml broker.listeners.tls.cert: is required when TLS is enabled',
      'x.yaml broker.listeners.tls.key: is required when TLS is enabled',
      'x.yaml broker.listeners.tls.ca: is required with requestClientCert (the CA that signs client certificates)',
      'x.yaml broker.listeners.tcp.roles[1]: resident (anonymous) is admitted on the WebSocket listener only',
    ]);
  });

  it("wants the HTTP listener's TLS files as the broker's, resolved relative to the config file", () => {
    const err = errorOf(() => buildConfig({ http: { tls: { enabled: true } } }, '/srv', 'x.yaml'));
    expect(err.details).toEqual(['x.yaml http.tls.cert: is required when TLS is enabled', 'x.yaml http.tls.key: is required when TLS is enabled']);
    const c = buildConfig({ http: { tls: { enabled: true, cert: 'tls/hub.crt', key: 'tls/hub.key' } } }, '/srv');
    expect(c.http.tls).toMatchObject({ cert: '/srv/tls/hub.crt', key: '/srv/tls/hub.key', requestClientCert: false });
    expect(c.http.sessions).toEqual({ idleMinutes: 480, maxHours: 24 });
  });

  it('resolves certificate files relative to the config file', () => {
    const c = buildConfig({ broker: { listeners: { tls: { enabled: true, cert: 'tls/hub.crt', key: 'tls/hub.key' } } }, gateway: { tls: { ca: 'ca.pem' } } }, '/srv/cosafe');
    expect(c.broker.listeners.tls.cert).toBe('/srv/cosafe/tls/hub.crt');
    expect(c.gateway.tls?.ca).toBe('/srv/cosafe/ca.pem');
  });

  it('says which file cannot be read', () => {
    const err = errorOf(() => loadConfigFile('/nonexistent/cosafe.yaml'));
    expect(err.code).toBe('COSAFE_ERR_CONFIG_READ');
    expect(err.message).toContain('/nonexistent/cosafe.yaml');
  });

  it('reports YAML syntax errors with their line', () => {
    const f = file('broker:\n  port: [1883\n');
    const err = errorOf(() => loadConfigFile(f));
    expect(err.details[0]).toMatch(new RegExp(`^${f}:\\d+ `));
  });
});

describe('the example config', () => {
  it('is valid, so a newcomer can start from it', () => {
    const c = loadConfigFile(new URL('../../../examples/cosafe.yaml', import.meta.url).pathname);
    expect(c.gateway.devices.map((d) => d.profile)).toEqual(['mqtt-smoke-detector', 'zigbee2mqtt-smoke-detector', 'mqtt-exit-door-monitor', 'mqtt-temperature-humidity', 'serial-conventional-panel-printer']);
    expect(c.gateway.bridges).toEqual([{ id: 'zigbee', prefix: 'zigbee2mqtt' }]);
    expect(c.cloudSync.fireDepartments[0]?.classes).toContain('fire');
  });
});
