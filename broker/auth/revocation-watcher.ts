import type { Logger } from '../../core/logger.js';
import type { CredentialStore } from './credential-store.js';

/**
 * How a revocation made by `cosafe credentials revoke` (another process, or
 * another machine sharing the data directory) reaches the running broker: it
 * polls SQLite's `data_version`, which changes whenever another connection has
 * committed to the file. One cheap pragma per second, no extra port to secure,
 * nothing to lose if the broker was down when the change was made (on start it
 * reads the store as it is), and it works for `cosafe broker` running alone.
 */
export class RevocationWatcher {
  private timer: NodeJS.Timeout | undefined;
  private last: number | undefined;
  private failing = false;

  constructor(private readonly d: { store: CredentialStore; everyMs: number; logger: Logger; onChange: () => void }) {}

  start(): void {
    this.last = this.d.store.dataVersion();
    this.timer = setInterval(() => this.check(), this.d.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Also called directly by tests and by the broker after its own changes. */
  check(): void {
    try {
      const v = this.d.store.dataVersion();
      if (this.failing) this.d.logger.info('credential store readable again');
      this.failing = false;
      if (v === this.last) return;
      this.last = v;
      this.d.onChange();
    } catch (err) {
      if (!this.failing) this.d.logger.error({ code: 'COSAFE_ERR_CREDENTIALS_STORE', err: (err as Error).message }, 'cannot check the credential store for revocations');
      this.failing = true;
    }
  }
}
