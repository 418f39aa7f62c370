import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable lines (default when stdout is a terminal) or JSON lines for log shippers. */
  format?: 'pretty' | 'json';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const format = options.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format === 'json') return pino({ level, base: { pid: process.pid } });
  // Synchronous pretty stream: no worker thread, and nothing is lost when the
  // process exits right after logging a fatal error.
  return pino(
    { level, base: undefined },
    pretty({ sync: true, colorize: process.stdout.isTTY, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}

/** For tests and benchmarks that must not print. */
export const silentLogger: Logger = pino({ level: 'silent' });
