import type { Logger } from '../core/logger.js';

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once (for a stuck shutdown). */
export function untilStopSignal(logger: Logger): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => {
      logger.info({ signal }, 'stopping (press Ctrl-C again to force)');
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
  });
}
