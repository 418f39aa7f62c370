import { SerialPort } from 'serialport';
import type { Logger } from '../../core/logger.js';

export interface SerialSettings {
  baudRate: number;
  dataBits: 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
}

export type LinkState = 'opening' | 'open' | 'backoff' | 'stopped';

export interface SerialLinkOptions {
  path: string;
  settings: SerialSettings;
  logger: Logger;
  onData(chunk: Buffer): void;
  /** Called when the port opens (again): a good moment to reset framing state. */
  onOpen?(): void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * A serial port that stays open: when it cannot be opened, or vanishes (a USB
 * adapter unplugged, a cable pulled), it is opened again with exponential
 * backoff until it is back, and says so once per change, not once per attempt.
 */
export class SerialLink {
  state: LinkState = 'stopped';
  /** Current retry delay while in backoff. */
  backoffMs = 0;
  readonly errors: Record<string, number> = {};
  private port: SerialPort | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastProblem: string | undefined;

  constructor(private readonly o: SerialLinkOptions) {}

  start(): void {
    this.state = 'opening';
    this.open();
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  write(data: Buffer): boolean {
    if (!this.port || this.state !== 'open') return false;
    this.port.write(data);
    return true;
  }

  /** Drops whatever the OS has buffered (bytes of a frame that is already given up on). */
  flushInput(): void {
    if (this.port?.isOpen) this.port.flush(() => {});
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private open(): void {
    if (this.state === 'stopped') return;
    const { path, settings } = this.o;
    const port = new SerialPort({ path, ...settings, autoOpen: false });
    port.open((err) => {
      if (this.state === 'stopped') {
        if (!err) port.close();
        return;
      }
      if (err) return this.failed('open', err.message);
      this.port = port;
      this.state = 'open';
      this.backoffMs = 0;
      this.o.logger.info({ port: path, baudRate: settings.baudRate }, this.lastProblem ? 'serial port open again' : 'serial port open');
      this.lastProblem = undefined;
      this.o.onOpen?.();
    });
    port.on('data', (chunk: Buffer) => this.o.onData(chunk));
    port.on('error', (e) => {
      if (this.port === port) this.lost(port, e.message);
    });
    port.on('close', (e: Error & { disconnected?: boolean } | null) => {
      if (this.port === port && this.state !== 'stopped') this.lost(port, e?.message ?? 'port closed');
    });
  }

  private lost(port: SerialPort, reason: string): void {
    this.port = undefined;
    if (port.isOpen) port.close(() => {});
    this.failed('lost', reason);
  }

  private failed(kind: 'open' | 'lost', reason: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
    this.backoffMs = Math.min(this.o.maxBackoffMs ?? 10_000, Math.max(this.o.minBackoffMs ?? 250, this.backoffMs * 2));
    if (reason !== this.lastProblem) {
      this.o.logger.warn({ port: this.o.path, err: reason, retryInMs: this.backoffMs }, kind === 'lost' ? 'serial port lost; reopening with backoff' : 'serial port cannot be opened; retrying with backoff');
      this.lastProblem = reason;
    }
    this.state = 'backoff';
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.state = 'opening';
      this.open();
    }, this.backoffMs);
  }
}
