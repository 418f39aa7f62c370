import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, type GatewayStatus } from '../../broker/contract/index.js';
import { startStack, type Stack } from '../../cli/compose.js';
import { buildConfig, type Config } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { asOperator } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil } from '../helpers/processes.js';

/**
 * The gateway's status as the hub gets it: a full report (every device) is the
 * retained one; between full reports, every 5 s, a small one says when each
 * device was last heard, and the hub shows those times. Real broker, gateway
 * and cloud-sync in one process; the sensor and the observer are mqtt.js clients.
 */
const SITE = 'tower-4';
const GATEWAY = 'gw-1';
const ids = ['smoke-lobby', 'th-0001', 'th-0002', 'th-0003'];
let stack: Stack;
let config: Config;
let mqttPort: number;

beforeAll(async () => {
  mqttPort = await freePort();
  config = buildConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'cosafe-status-')),
    log: { level: 'silent' },
    broker: { host: '127.0.0.1', port: mqttPort, persistence: 'memory' },
    http: { host: '127.0.0.1', port: 0 },
    gateway: {
      id: GATEWAY,
      site: SITE,
      batch: { maxDelayMs: 20 },
      devices: [
        { id: 'smoke-lobby', profile: 'mqtt-smoke-detector' },
        { range: { from: 'th-0001', to: 'th-0003' }, profile: 'mqtt-temperature-humidity', location: 'offices' },
      ],
    },
  });
  stack = await startStack(config, ['broker', 'cloud-sync', 'gateway'], silentLogger);
});

afterAll(async () => {
  await stack?.stop();
});

const onHub = async (device: string): Promise<number | null> => {
  const { gateways } = (await (await fetch(`${stack.cloudSync!.httpUrl}/api/v1/gateways`, asOperator(config.dataDir))).json()) as { gateways: GatewayStatus[] };
  return gateways.find((g) => g.gateway === GATEWAY)?.health?.devices?.find((d) => d.id === device)?.lastSeen ?? null;
};

describe("a gateway's status", () => {
  it('lists the devices in the retained status only; the periodic statuses between say when each was last heard, and the hub shows it', async () => {
    const observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { ...stack.issueInternal!({ role: 'service', id: '@service:status-observer' }), reconnectPeriod: 0 });
    const seen: { retain: boolean; status: GatewayStatus; bytes: number }[] = [];
    observer.on('message', (_t, payload, packet) => seen.push({ retain: packet.retain, status: JSON.parse(payload.toString()) as GatewayStatus, bytes: payload.length }));
    try {
      await observer.subscribeAsync(topics.status(SITE, GATEWAY), { qos: 1 });
      await waitUntil('the retained status', async () => seen.length > 0);
      const retained = seen[0]!;
      expect(retained.retain).toBe(true);
      expect(retained.status.health!.devices!.map((d) => d.id)).toEqual(ids);
      const list = retained.status.health!.deviceList;
      expect(list).toMatch(/^[0-9a-f]{16}$/);

      // Start-up settles (the links and subscriptions come up: full statuses at once), then the periodic ones come.
      const periodic = (from: number) => seen.slice(from).filter((s) => !s.status.health?.devices);
      await waitUntil('a periodic status', async () => periodic(0).length > 0, 20_000);
      const before = seen.length;

      // A sensor heard: nothing changes but its last-heard time, so no full status is due for 5 minutes.
      const device = 'th-0002';
      const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { ...stack.issueInternal!({ role: 'device', id: `@device:${SITE}:${device}`, site: SITE, device }), reconnectPeriod: 0 });
      const heardAt = Date.now();
      await sensor.publishAsync(topics.deviceUplink(SITE, device), JSON.stringify({ temperature: 21.5, humidity: 40 }), { qos: 1 });
      await sensor.endAsync();

      await waitUntil(`the hub to show ${device} heard`, async () => ((await onHub(device)) ?? 0) >= heardAt, 20_000, 200);
      // What the hub shows is the time a periodic status gave (the observer gets the same message, maybe a little later).
      const shown = await onHub(device);
      const at = ids.indexOf(device);
      await waitUntil('the observer to get the periodic status the hub took', async () => periodic(before).some((s) => s.status.health!.at - s.status.health!.lastSeenAgo![at]! === shown));
      expect(seen.slice(before).filter((s) => s.status.health?.devices)).toEqual([]);
      for (const s of periodic(0)) {
        expect(s.retain).toBe(false);
        expect(s.status.health!.deviceList).toBe(list);
        expect(s.status.health!.lastSeenAgo).toHaveLength(ids.length);
        expect(s.bytes).toBeLessThan(retained.bytes);
      }
    } finally {
      await observer.endAsync();
    }
  });

  it('is taken only for the gateway its topic names: a gateway claiming to be another is refused', async () => {
    // A gateway may publish on its own status topic only; this one's payload says it is gw-1 of another business, all well.
    const forger = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { ...stack.issueInternal!({ role: 'gateway', id: `@gateway:${SITE}:gw-2`, site: SITE, gateway: 'gw-2' }), reconnectPeriod: 0 });
    const sentAt = Date.now();
    const forged = { v: 1, gateway: GATEWAY, site: 'bakery-12', state: 'online', boot: 'forged', since: sentAt, health: { at: sentAt, adapters: [], devices: [], activeConditions: [] } };
    await forger.publishAsync(topics.status(SITE, 'gw-2'), JSON.stringify(forged), { qos: 1 });
    await forger.endAsync();
    const gateways = async () => ((await (await fetch(`${stack.cloudSync!.httpUrl}/api/v1/gateways`, asOperator(config.dataDir))).json()) as { gateways: GatewayStatus[] }).gateways;
    // gw-1's own next status, published after the forged one, marks that the hub has read past it.
    await waitUntil('the next status of gw-1', async () => (await gateways()).some((g) => g.gateway === GATEWAY && (g.health?.at ?? 0) > sentAt), 20_000, 200);
    const now = await gateways();
    expect(now.map((g) => `${g.site}/${g.gateway}`)).toEqual([`${SITE}/${GATEWAY}`]);
    expect(now[0]!.health!.devices!.map((d) => d.id)).toEqual(ids);
  });
});
