import { cellToParent, cellsToMultiPolygon, getResolution, gridDisk, isValidCell, latLngToCell } from 'h3-js';
import type { PublicConfig } from '../../core/public-config.js';

export interface Position {
  lat: number;
  lon: number;
}

export interface PublicArea {
  resolution: number;
  /** The centre cell (the site's, coarsened) and its neighbours within `ring`. */
  cells: string[];
  /** Registered sites in the centre cell: at least k unless the coarsest resolution still had fewer. */
  sitesInCell: number;
}

type AreaConfig = Pick<PublicConfig, 'resolution' | 'coarsestResolution' | 'minSitesPerCell' | 'ring'>;

/**
 * The area of a public alert: the H3 cell of the site at `resolution`, widened
 * to its parent while fewer than k registered sites (`minSitesPerCell`) fall in
 * it, so that an alert does not point at one building (k-anonymity over the
 * registry), but never coarser than `coarsestResolution`; with the cells of
 * the ring around it. Parents are taken in H3's index hierarchy from the
 * finest cell (cellToParent), the same way the residents' page works out its
 * own cells, so both sides agree on which cell a point is in.
 */
export function publicArea(site: Position, registered: readonly Position[], c: AreaConfig): PublicArea {
  const fine = latLngToCell(site.lat, site.lon, c.resolution);
  const fineOfSites = registered.map((s) => latLngToCell(s.lat, s.lon, c.resolution));
  let resolution = c.resolution;
  let centre = fine;
  let count = fineOfSites.filter((x) => x === fine).length;
  while (count < c.minSitesPerCell && resolution > c.coarsestResolution) {
    resolution--;
    centre = cellToParent(fine, resolution);
    count = fineOfSites.filter((x) => cellToParent(x, resolution) === centre).length;
  }
  return { resolution, cells: gridDisk(centre, c.ring).sort(), sitesInCell: count };
}

/**
 * Whether an alert's area concerns any of `cells` (of any resolution): one of
 * them is an alert cell, or a parent of one (a coarse subscription), or a
 * child of one (a fine subscription).
 */
export function areaConcerns(area: { resolution: number; cells: readonly string[] }, cells: readonly string[]): boolean {
  const mine = new Set(area.cells);
  return cells.some((q) => {
    const r = getResolution(q);
    if (r === area.resolution) return mine.has(q);
    if (r > area.resolution) return mine.has(cellToParent(q, area.resolution));
    return area.cells.some((a) => cellToParent(a, r) === q);
  });
}

/**
 * The cells whose `public/<cell>/alerts` topic carries an alert: its own, and
 * their parents up to the coarsest resolution (where the residents' pages
 * subscribe, so the broker learns no more than that coarse cell).
 */
export function topicCells(area: { resolution: number; cells: readonly string[] }, coarsest: number): string[] {
  const out = new Set<string>();
  for (const cell of area.cells) for (let r = area.resolution; r >= Math.min(coarsest, area.resolution); r--) out.add(r === area.resolution ? cell : cellToParent(cell, r));
  return [...out].sort();
}

/**
 * CAP 1.2 §3.2.4 polygons of an area: the outline of its cells, each ring as
 * "lat,lon" pairs, first and last the same, 4 decimals (about 10 m, finer
 * than any cell edge).
 */
export function areaPolygons(cells: readonly string[]): string[] {
  return cellsToMultiPolygon([...cells], false).map((polygon) => {
    const outer = polygon[0]!;
    const ring = [...outer, outer[0]!];
    return ring.map(([lat, lon]) => `${lat!.toFixed(4)},${lon!.toFixed(4)}`).join(' ');
  });
}

/** Valid H3 cells of a query (`cells=a,b,c`), or the reason they are not. */
export function parseCells(raw: string | undefined, max = 50): { ok: true; cells: string[] } | { ok: false; error: string } {
  if (raw === undefined || raw === '') return { ok: true, cells: [] };
  const cells = raw.split(',').map((c) => c.trim().toLowerCase());
  if (cells.length > max) return { ok: false, error: `cells: at most ${max}` };
  const bad = cells.filter((c) => !/^8[0-9a-f]{14}$/.test(c) || !isValidCell(c));
  if (bad.length) return { ok: false, error: `cells: not H3 cells: ${bad.slice(0, 3).join(', ')}` };
  return { ok: true, cells };
}
