import { Duplex } from 'node:stream';

/**
 * Aedes' MQTT parser (mqtt-packet) has no size limit: it buffers whatever a
 * packet's header announces, up to 256 MB [MQTT-2.2.3]. The guard reads only
 * the fixed headers of the byte stream and ends the connection as soon as a
 * header announces a packet larger than the limit, before its body is buffered.
 * MQTT 3.1.1 has no way to tell the client why, so closing is the answer.
 */
export class PacketTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`MQTT packet of ${bytes} bytes exceeds the limit of ${limit} bytes`);
    this.name = 'PacketTooLargeError';
  }
}

/** Follows packet boundaries through a byte stream, whatever the chunking. */
export class MqttFrameScanner {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** The first problem in `chunk`, if any; after one, the stream must be closed. */
  scan(chunk: Buffer): Error | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'type';
      } else if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        // The remaining length: 1 to 4 bytes, 7 bits each, low bits first [MQTT-2.2.3].
        const b = chunk[i++]!;
        this.lengthBytes++;
        this.length += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        if (b & 0x80) {
          if (this.lengthBytes === 4) return new Error('malformed MQTT remaining length (more than 4 bytes)');
          continue;
        }
        const total = 1 + this.lengthBytes + this.length;
        if (total > this.maxPacketBytes) return new PacketTooLargeError(total, this.maxPacketBytes);
        this.remaining = this.length;
        this.state = this.remaining === 0 ? 'type' : 'body';
      }
    }
    return undefined;
  }
}

/**
 * The stream Aedes reads from and writes to: what the connection reads passes
 * the scanner, writes go straight to the connection, with backpressure both
 * ways. Destroying one destroys the other; a plain close is not an error.
 */
export class GuardedConnection extends Duplex {
  private readonly scanner: MqttFrameScanner;

  constructor(
    private readonly raw: Duplex,
    maxPacketBytes: number,
    onTooLarge: (err: PacketTooLargeError) => void,
  ) {
    super({ allowHalfOpen: false });
    this.scanner = new MqttFrameScanner(maxPacketBytes);
    raw.on('data', (chunk: Buffer) => {
      if (this.destroyed) return;
      const err = this.scanner.scan(chunk);
      if (err) {
        if (err instanceof PacketTooLargeError) onTooLarge(err);
        this.destroy(err);
        return;
      }
      if (!this.push(chunk)) raw.pause();
    });
    raw.once('end', () => this.push(null));
    raw.on('error', (err) => this.destroy(err));
    raw.once('close', () => this.destroy());
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.raw.write(chunk, encoding)) callback();
    else this.raw.once('drain', () => callback());
  }

  /**
   * mqtt-packet corks this stream for each packet it writes and uncorks it on
   * the next tick, so the chunks of every packet written in one tick (a
   * header, a topic, a payload each; all the PUBLISHes a group commit released
   * to one subscriber) come here together. Written corked, they leave in one
   * writev: one system call instead of one per chunk, which was a tenth of
   * the broker's CPU with a thousand devices publishing.
   */
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void {
    this.raw.cork();
    let ok = true;
    for (const { chunk, encoding } of chunks) ok = this.raw.write(chunk, encoding);
    this.raw.uncork();
    if (ok) callback();
    else this.raw.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.raw.end(() => callback());
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.raw.destroy();
    callback(err);
  }
}
