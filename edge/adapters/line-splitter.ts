/**
 * Turns a byte stream from a printer port into lines. Lines end at CR, LF or
 * CRLF; a line longer than the limit is cut off and reported once as overlong
 * (a wrong baud rate or a stuck port gives endless "lines"), and bytes that are
 * neither printable nor whitespace are counted as noise.
 */
export class LineSplitter {
  private buf = '';
  private discarding = false;
  overlong = 0;
  noiseBytes = 0;

  constructor(private readonly maxLength: number) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    // latin1 maps every byte to one character: nothing is lost, nothing throws.
    const text = chunk.toString('latin1');
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a || c === 0x0d) {
        if (!this.discarding && this.buf.length > 0) lines.push(this.buf);
        this.buf = '';
        this.discarding = false;
        continue;
      }
      if ((c < 0x20 && c !== 0x09 && c !== 0x0c) || c >= 0x7f) this.noiseBytes++;
      if (this.discarding) continue;
      if (this.buf.length >= this.maxLength) {
        this.overlong++;
        this.discarding = true;
        this.buf = '';
        continue;
      }
      this.buf += text[i];
    }
    return lines;
  }

  /** Forgets a partial line (the port was reopened: its start is gone). */
  reset(): void {
    this.buf = '';
    this.discarding = false;
  }
}
