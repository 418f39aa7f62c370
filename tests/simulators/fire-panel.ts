import { SerialPort } from 'serialport';

/**
 * A conventional fire alarm panel's event printer: writes event lines (in the
 * format of the built-in profile `serial-conventional-panel-printer`) into its
 * end of a serial line. Can also send what real lines carry: noise bytes, lines
 * split across writes, and garbage as from a wrong baud rate.
 */
export class FirePanelSimulator {
  private port: SerialPort | undefined;

  constructor(private readonly path: string, private readonly baudRate = 9600) {}

  async open(): Promise<this> {
    this.port = await new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: this.path, baudRate: this.baudRate, autoOpen: false });
      p.open((err) => (err ? reject(err) : resolve(p)));
    });
    return this;
  }

  alarm(zone: number, text = ''): Promise<void> {
    return this.line(`${stamp()} FIRE ALARM      ZONE ${pad(zone)} ${text}`);
  }

  restore(zone: number, text = ''): Promise<void> {
    return this.line(`${stamp()} FIRE RESTORE    ZONE ${pad(zone)} ${text}`);
  }

  trouble(zone: number, text = 'OPEN CIRCUIT'): Promise<void> {
    return this.line(`${stamp()} TROUBLE         ZONE ${pad(zone)} ${text}`);
  }

  troubleRestore(zone: number): Promise<void> {
    return this.line(`${stamp()} TROUBLE RESTORE ZONE ${pad(zone)}`);
  }

  reset(): Promise<void> {
    return this.line(`${stamp()} SYSTEM RESET`);
  }

  line(text: string): Promise<void> {
    return this.write(Buffer.from(`${text}\r\n`, 'latin1'));
  }

  /** A line delivered in pieces, as a slow UART does. */
  async split(text: string, pieces = 3): Promise<void> {
    const data = `${text}\r\n`;
    const size = Math.ceil(data.length / pieces);
    for (let i = 0; i < data.length; i += size) {
      await this.write(Buffer.from(data.slice(i, i + size), 'latin1'));
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const port = this.port;
      if (!port?.isOpen) return reject(new Error('panel port is not open'));
      // The port of this write: close() may take this.port away before it completes (the demo stopping).
      port.write(data, (err) => (err ? reject(err) : port.drain(() => resolve())));
    });
  }

  async close(): Promise<void> {
    const p = this.port;
    this.port = undefined;
    if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
  }
}

const pad = (n: number) => String(n).padStart(2, '0');
/** The panel's own clock as it prints it: local time, day first (dd/MM/yy HH:mm:ss). */
export function stamp(d = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getDate())}/${two(d.getMonth() + 1)}/${String(d.getFullYear()).slice(2)} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
