import { systemClock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { MqttClientAuth } from '../../core/mqtt-client-auth.js';
import type { DecodeOutcome } from '../../device-profiles/codecs/index.js';
import type { Adapter, AdapterContext } from '../../edge/adapters/adapter.js';
import type { DeviceBinding } from '../../edge/device-binding.js';

export interface Received {
  device: string;
  outcome: DecodeOutcome;
  at: number;
}

export interface HarnessOptions {
  brokerUrl?: string;
  brokerAuth?: MqttClientAuth;
  logger?: Logger;
  sessionId?: string;
  /** As the gateway's outbox answers: whether what was handed over last is stored (the MQTT adapter acknowledges then). */
  readingsStored?: (last: Received | undefined) => Promise<boolean>;
  /** As the gateway answers: whether the events an input raised are safe (undefined: it raised none). */
  raised?: (r: Received) => Promise<boolean> | undefined;
}

/** Runs one adapter over real transports and records what it delivers, as the gateway would receive it. */
export class AdapterHarness {
  readonly received: Received[] = [];
  readonly adapter: Adapter;
  private readonly abort = new AbortController();

  constructor(factory: (ctx: AdapterContext) => Adapter, devices: DeviceBinding[], options: HarnessOptions = {}) {
    this.adapter = factory({
      logger: options.logger ?? silentLogger,
      clock: systemClock,
      devices,
      brokerUrl: options.brokerUrl ?? '',
      ...(options.brokerAuth ? { brokerAuth: options.brokerAuth } : {}),
      ...(options.sessionId ? { sessionId: options.sessionId } : {}),
      ...(options.readingsStored ? { readingsStored: () => options.readingsStored!(this.received.at(-1)) } : {}),
      onDecoded: (binding, outcome) => {
        const r = { device: binding.device.id, outcome, at: Date.now() };
        this.received.push(r);
        return options.raised?.(r);
      },
    });
  }

  start(): Promise<void> {
    return this.adapter.start(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.adapter.stop();
  }

  signals(device?: string) {
    return this.received.filter((r) => !device || r.device === device).flatMap((r) => r.outcome.signals);
  }

  values(device?: string) {
    return this.received.filter((r) => !device || r.device === device).flatMap((r) => r.outcome.values);
  }
}
