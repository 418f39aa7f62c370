import { closeSync, fsyncSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { openPrivateFile } from '../core/private-files.js';

/**
 * A small JSON document that survives a crash: written to a temporary file,
 * flushed to disk, then renamed over the old one, so a reader sees either the
 * old or the new version, never half of one. Private (0600), like every file
 * of the data directory.
 */
export class StateFile<T> {
  constructor(private readonly path: string) {}

  read(): T | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  write(value: T): void {
    const tmp = `${this.path}.tmp`;
    const fd = openPrivateFile(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(value));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
