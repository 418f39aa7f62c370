import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { topics } from '../../broker/contract/index.js';
import type { DeviceConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import { FirePanelSimulator } from './fire-panel.js';
import { ModbusSlaveSimulator } from './modbus-slave.js';
import { SensorSimulator, type SimulatedDevice } from './mqtt-sensors.js';
import { PtyPair } from './pty-pair.js';

export interface DemoSiteOptions {
  site: string;
  /** How often the MQTT sensors report. */
  intervalMs: number;
  /** The smoke detector and the panel go into alarm once per this period (0: never). */
  alarmEveryMs: number;
  logger: Logger;
}

export interface DemoSite {
  devices: DeviceConfig[];
  /** Starts the MQTT sensors and the panel's event cycle (once the broker runs); each sensor logs in with `credentialsFor(device)`. */
  start(brokerUrl: string, credentialsFor?: (device: string) => { username: string; password: string }): Promise<void>;
  /** Stops every simulated device. */
  stop(): Promise<void>;
  /** Removes the serial lines and stops the OPC-UA server; after the gateway has stopped, so it does not see them vanish. */
  close(): Promise<void>;
}

const MQTT_DEVICES = [
  { id: 'temp-lobby', profile: 'mqtt-temperature-humidity', location: 'ground floor lobby', kind: 'temperature-humidity' },
  { id: 'temp-kitchen', profile: 'mqtt-temperature-humidity', location: '1F kitchen', kind: 'temperature-humidity' },
  { id: 'temp-storage', profile: 'mqtt-temperature-humidity', location: 'basement storage', kind: 'temperature-humidity' },
  { id: 'smoke-kitchen', profile: 'mqtt-smoke-detector', location: '1F kitchen', kind: 'smoke-detector' },
] as const;

/**
 * A small building for `cosafe demo`: MQTT sensors, a fire alarm panel printing
 * on a serial line, and three Modbus units on an RS-485 bus, each speaking its
 * real protocol over pseudo-terminals. Without `socat` the serial devices are
 * left out, and the demo says so.
 */
export async function createDemoSite(o: DemoSiteOptions): Promise<DemoSite> {
  const devices: DeviceConfig[] = MQTT_DEVICES.map(({ kind: _k, ...d }) => d);
  const stops: (() => Promise<void>)[] = [];
  const starts: ((brokerUrl: string, credentialsFor?: (device: string) => { username: string; password: string }) => Promise<void>)[] = [];
  /** What must outlive the gateway: serial lines and servers it would otherwise see vanish. */
  const closers: (() => Promise<void>)[] = [];

  starts.push(async (brokerUrl, credentialsFor) => {
    const simulated: SimulatedDevice[] = MQTT_DEVICES.map((d) => ({
      topic: topics.deviceUplink(o.site, d.id),
      kind: d.kind,
      ...(credentialsFor ? { credentials: credentialsFor(d.id) } : {}),
    }));
    const sensors = new SensorSimulator({ brokerUrl, devices: simulated, intervalMs: o.intervalMs, alarmEveryMs: o.alarmEveryMs, alarmForMs: Math.min(8000, o.alarmEveryMs / 2) });
    await sensors.start();
    stops.push(() => sensors.stop());
  });

  if (hasSocat()) {
    const panelLine = await new PtyPair('panel').plug();
    const bus = await new PtyPair('rs485').plug();
    closers.push(() => panelLine.unplug(), () => bus.unplug());
    devices.push(
      { id: 'fire-panel', profile: 'serial-conventional-panel-printer', location: 'ground floor, fire control room', port: panelLine.devicePath },
      { id: 'gas-boiler', profile: 'modbus-combustible-gas-detector', location: 'basement boiler room', port: bus.devicePath, unitId: 1 },
      { id: 'co-garage', profile: 'modbus-co-detector', location: 'underground garage', port: bus.devicePath, unitId: 2 },
      { id: 'riser-pressure', profile: 'modbus-sprinkler-pressure-transmitter', location: 'sprinkler riser, stair A', port: bus.devicePath, unitId: 3 },
    );
    // The Modbus units answer from the start, as real ones do when the gateway boots.
    const slaves = await new ModbusSlaveSimulator(bus.simPath).withBuiltinDevices().open();
    slaves.animate();
    stops.push(() => slaves.close());
    starts.push(async () => {
      const panel = await new FirePanelSimulator(panelLine.simPath).open();
      stops.unshift(() => panel.close());
      if (o.alarmEveryMs > 0) {
        // Zone 2 goes into alarm half a period after the smoke detector does, and restores a little later.
        const timers: NodeJS.Timeout[] = [];
        const alarmThenRestore = () => {
          void panel.alarm(2, 'STAIRWELL B').catch(() => {});
          timers.push(setTimeout(() => void panel.restore(2, 'STAIRWELL B').catch(() => {}), Math.min(10_000, o.alarmEveryMs / 3)));
        };
        timers.push(
          setTimeout(() => {
            alarmThenRestore();
            timers.push(setInterval(alarmThenRestore, o.alarmEveryMs));
          }, o.alarmEveryMs / 2),
        );
        stops.unshift(async () => timers.forEach((t) => clearTimeout(t)));
      }
    });
  }

  // The building management system's OPC-UA server; node-opcua is loaded only here, because it
  // takes a couple of seconds and every other cosafe command would pay for it.
  const { OpcuaSprinklerServer } = await import('./opcua-sprinkler-server.js');
  const bms = new OpcuaSprinklerServer({ security: ['None'] });
  await bms.start();
  closers.push(() => bms.stop());
  devices.push({ id: 'bms-sprinkler', profile: 'opcua-bms-sprinkler-system', location: 'sprinkler pump room', endpoint: bms.endpointUrl });

  if (!hasSocat()) {
    o.logger.warn('socat is not installed: the demo runs without its serial fire panel and Modbus devices (apt-get install -y socat)');
  }

  return {
    devices,
    async start(brokerUrl, credentialsFor) {
      for (const s of starts) await s(brokerUrl, credentialsFor);
    },
    async stop() {
      for (const s of stops.splice(0)) await s().catch(() => {});
    },
    async close() {
      for (const c of closers.splice(0)) await c().catch(() => {});
    },
  };
}

function hasSocat(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(join(dir, 'socat')));
}
