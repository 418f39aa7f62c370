import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { Site } from './site.js';
import type { SiteStore } from './site-store.js';

/** Who answers for a site: what the dispatch needs of the registry. */
export type SiteLookup = (site: string) => Site | undefined;

/**
 * The running hub's view of the registry: every site in memory, re-read when
 * `cosafe sites` (another process) has changed the file. A lookup costs one
 * `PRAGMA data_version` (no timer, so a site added a moment ago is known to the
 * very next alarm). When the file cannot be read the last good view stays, and
 * the failure is logged once.
 */
export class SiteRegistry {
  private sites = new Map<string, Site>();
  private version: number | undefined;
  private failing = false;

  constructor(private readonly d: { store: SiteStore; logger: Logger; metrics: Metrics }) {}

  readonly lookup: SiteLookup = (site) => {
    this.refresh();
    return this.sites.get(site);
  };

  all(): Site[] {
    this.refresh();
    return [...this.sites.values()];
  }

  refresh(): void {
    try {
      const v = this.d.store.dataVersion();
      if (v === this.version) return;
      this.sites = new Map(this.d.store.list().map((s) => [s.id, s]));
      this.version = v;
      this.d.metrics.set('cosafe_sites_registered', {}, this.sites.size);
      if (this.failing) this.d.logger.info('site registry readable again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.d.logger.error({ code: 'COSAFE_ERR_SITES_STORE', err: (err as Error).message }, 'cannot read the site registry; using the last good copy');
      this.failing = true;
    }
  }
}
