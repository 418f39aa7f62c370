import type { Logger } from '../../../core/logger.js';
import { SerialLink, type SerialSettings } from '../serial-link.js';
import { parseReadResponse, readRequest, type ParsedResponse, type ReadTable } from './rtu-frame.js';

export type TransactionResult = ParsedResponse | { ok: false; kind: 'timeout' | 'port'; detail: string };

export interface ModbusBusOptions {
  path: string;
  settings: SerialSettings;
  /** Silence between frames; at least the 3.5 character times of Modbus over Serial Line §2.5.1.1. */
  frameGapMs: number;
  logger: Logger;
}

/**
 * One RS-485 bus: one master, one transaction at a time. A request waits for its
 * answer or its timeout, then the bus stays silent for the frame gap before the
 * next request, so that slow units never see two frames run together.
 */
export class ModbusBus {
  readonly link: SerialLink;
  private rx = Buffer.alloc(0);
  private onRx: (() => void) | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ModbusBusOptions) {
    this.link = new SerialLink({
      path: o.path,
      settings: o.settings,
      logger: o.logger,
      onData: (chunk) => {
        this.rx = Buffer.concat([this.rx, chunk]);
        this.onRx?.();
      },
    });
  }

  start(): void {
    this.link.start();
  }

  stop(): Promise<void> {
    return this.link.stop();
  }

  /** Queues a read; resolves when it is answered, rejected by the unit, or timed out. */
  read(unit: number, table: ReadTable, address: number, count: number, timeoutMs: number): Promise<TransactionResult> {
    const run = this.chain.then(() => this.transact(unit, table, address, count, timeoutMs));
    this.chain = run.then(() => new Promise((r) => setTimeout(r, this.o.frameGapMs)));
    return run;
  }

  private transact(unit: number, table: ReadTable, address: number, count: number, timeoutMs: number): Promise<TransactionResult> {
    if (!this.link.isOpen) return Promise.resolve({ ok: false, kind: 'port', detail: `port ${this.o.path} is not open (${this.link.state})` });
    // Whatever arrived before our request (a late answer to a timed-out one, line noise) is not ours.
    this.rx = Buffer.alloc(0);
    return new Promise((resolve) => {
      const finish = (result: TransactionResult) => {
        clearTimeout(timer);
        this.onRx = undefined;
        resolve(result);
      };
      const timer = setTimeout(() => finish({ ok: false, kind: 'timeout', detail: `unit ${unit} did not answer within ${timeoutMs} ms` }), timeoutMs);
      this.onRx = () => {
        // Skip leading bytes that cannot start our answer (noise, an echo on some converters).
        while (this.rx.length > 0 && this.rx[0] !== unit) this.rx = this.rx.subarray(1);
        const parsed = parseReadResponse(this.rx, unit, table, count);
        if (!(parsed.ok === false && parsed.kind === 'incomplete')) finish(parsed);
      };
      if (!this.link.write(readRequest(unit, table, address, count))) finish({ ok: false, kind: 'port', detail: `port ${this.o.path} closed` });
    });
  }
}

/** 3.5 character times (11 bits each: start, 8 data, parity or stop, stop), at least 5 ms for USB adapters' latency. */
export function defaultFrameGapMs(baudRate: number): number {
  return Math.max(5, Math.ceil((3.5 * 11 * 1000) / baudRate));
}
