import type { ClientMonitoredItem, ClientSubscription, DataValue } from 'node-opcua-client';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { ProfileOf } from '../../device-profiles/schema.js';
import type { DeviceBinding } from '../device-binding.js';
import type { OpcuaLib } from './opcua-settings.js';

export interface OpcuaPointsOptions {
  devices: readonly DeviceBinding[];
  lib: OpcuaLib;
  logger: Logger;
  clock: Clock;
  /** One data change of one node of one device; `value` is null when its status is bad. */
  onValue(binding: DeviceBinding, nodeId: string, value: unknown, time: number): void;
  countError(kind: string): void;
}

interface Point {
  binding: DeviceBinding;
  read: ProfileOf<'opcua'>['points'][number]['read'];
}

/**
 * The data points of the devices on one endpoint, as monitored items of one
 * subscription: what the server refused, which values are bad, when the last
 * good one came.
 */
export class OpcuaPoints {
  /** Node ids that cannot be monitored, with the server's reason. */
  readonly badNodes = new Map<string, string>();
  /** Node ids whose value currently has a bad status, with the status. */
  readonly badStatus = new Map<string, string>();
  lastValueAt: number | null = null;
  /** Epoch ms of the last data change of any point: proof that the subscription is alive. */
  lastChangeAt = 0;
  private readonly points: Point[];

  constructor(private readonly o: OpcuaPointsOptions) {
    this.points = o.devices.flatMap((binding) => (binding.profile.transport === 'opcua' ? binding.profile.points.map((p) => ({ binding, read: p.read })) : []));
  }

  get size(): number {
    return this.points.length;
  }

  /** The fastest sampling interval asked for: the publishing interval follows it. */
  get fastestSamplingMs(): number {
    return Math.min(...this.points.map((p) => p.read.samplingIntervalMs));
  }

  /**
   * A monitored item per data point (OPC-UA Part 4 §5.12.2); resolves once the
   * server accepted or refused each. `current()` is false once the connection
   * these items belong to has been replaced: their events no longer count.
   */
  monitorAll(subscription: ClientSubscription, current: () => boolean): Promise<void> {
    return Promise.all(this.points.map((p) => this.monitor(subscription, p, current))).then(() => undefined);
  }

  private monitor(subscription: ClientSubscription, p: Point, current: () => boolean): Promise<void> {
    const { lib } = this.o;
    const { nodeId, samplingIntervalMs, deadband } = p.read;
    // Part 4 §7.22.2: StatusValue reports a change of value or status; the deadband
    // (Percent needs the variable's EURange, Part 8 §6.2) keeps noise off the wire.
    const filter = new lib.DataChangeFilter({
      trigger: lib.DataChangeTrigger.StatusValue,
      deadbandType: deadband ? (deadband.type === 'percent' ? lib.DeadbandType.Percent : lib.DeadbandType.Absolute) : lib.DeadbandType.None,
      deadbandValue: deadband?.value ?? 0,
    });
    let item: ClientMonitoredItem;
    try {
      item = lib.ClientMonitoredItem.create(
        subscription,
        { nodeId, attributeId: lib.AttributeIds.Value },
        // A queue keeps a short pulse (a flow switch) that flips back within one publishing interval.
        { samplingInterval: samplingIntervalMs, queueSize: 10, discardOldest: true, filter },
        lib.TimestampsToReturn.Both,
      );
    } catch (err) {
      this.refused(p, (err as Error).message);
      return Promise.resolve();
    }
    item.on('changed', (dv: DataValue) => {
      if (current()) this.changed(p, dv);
    });
    // node-opcua creates the items again after it recreated a subscription: 'err' and 'initialized' may come again.
    item.on('err', (message: string) => {
      if (current()) this.refused(p, message);
    });
    item.on('initialized', () => {
      if (current() && this.badNodes.delete(nodeId)) this.o.logger.info({ nodeId, device: p.binding.device.id }, `OPC-UA node ${nodeId} is monitored again`);
    });
    return new Promise<void>((resolve) => {
      item.once('initialized', () => resolve());
      item.once('err', () => resolve());
    });
  }

  private refused(p: Point, message: string): void {
    const { nodeId } = p.read;
    this.o.countError('node');
    const known = this.badNodes.get(nodeId) === message;
    this.badNodes.set(nodeId, message);
    if (!known) {
      this.o.logger.error(
        { code: 'COSAFE_ERR_OPCUA_NODE', device: p.binding.device.id, profile: p.binding.profile.id, nodeId, status: message },
        `OPC-UA node ${nodeId} cannot be monitored (${message}); the other points keep reporting`,
      );
    }
  }

  private changed(p: Point, dv: DataValue): void {
    const now = this.o.clock.now();
    this.lastChangeAt = now;
    const { nodeId } = p.read;
    const device = p.binding.device.id;
    const time = dv.sourceTimestamp?.getTime() ?? dv.serverTimestamp?.getTime() ?? now;
    // Part 4 §7.34: Bad means the value is not usable; Uncertain values are kept.
    const bad = dv.statusCode.isBad();
    if (bad) {
      this.o.countError('badStatus');
      const status = dv.statusCode.name;
      if (this.badStatus.get(nodeId) !== status) {
        this.o.logger.warn({ code: 'COSAFE_ERR_OPCUA_BAD_STATUS', device, nodeId, status }, `OPC-UA server reports ${status} for ${nodeId}`);
      }
      this.badStatus.set(nodeId, status);
    } else {
      if (this.badStatus.delete(nodeId)) this.o.logger.info({ device, nodeId }, `OPC-UA value of ${nodeId} is good again`);
      this.lastValueAt = now;
    }
    this.o.onValue(p.binding, nodeId, bad ? null : dv.value.value, time);
  }
}
