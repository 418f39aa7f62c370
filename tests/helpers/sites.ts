import { SiteStore, siteStorePath } from '../../cloud-sync/registry/site-store.js';

/** Sites put into a data directory's registry, as `cosafe sites import` would, before the process that reads it starts. */
export function registerSites(dataDir: string, ids: readonly string[], district: string, label = 'Site'): void {
  const store = SiteStore.open(siteStorePath(dataDir));
  try {
    store.putAll(ids.map((id, i) => SiteStore.parse({ id, name: `${label} ${id}`, address: `Hauptstr. ${i + 1}, 10115 Berlin`, location: { lat: 52.53 + i / 1000, lon: 13.38 }, district })));
  } finally {
    store.close();
  }
}
