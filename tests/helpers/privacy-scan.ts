import { getResolution } from 'h3-js';
import type { SiteInput } from '../../cloud-sync/registry/site.js';

/**
 * Every private string of a registry, as a resident must never meet it:
 * names, addresses, occupancy, hazards, notes, contacts, site ids, and the
 * positions written with 3 or more decimals (about 100 m), rounded and cut;
 * plus whatever else the test knows is private (device ids, event ids, alarm
 * ids, device locations).
 */
export function privateStrings(sites: readonly SiteInput[], extra: readonly string[] = []): string[] {
  const out = new Set<string>(extra);
  for (const s of sites) {
    for (const v of [s.id, s.name, s.address, s.occupancy, s.notes, ...(s.hazards ?? [])]) if (v) out.add(v);
    for (const c of s.contacts ?? []) for (const v of [c.name, c.role, c.phone, c.email]) if (v) out.add(v);
  }
  return [...out].filter((v) => v.length >= 3);
}

/**
 * Positions in `text` within about 150 m of a site: any two decimal numbers
 * of 3 or more decimals next to each other (lat,lon as CAP writes it, a JSON
 * object's lat and lon, GeoJSON's lon,lat). The outline of an area's cells
 * is not a leak: its corners lie a cell's width or more from the site.
 */
export function nearPositions(text: string, sites: readonly { location: { lat: number; lon: number } }[], metres = 150): string[] {
  const numbers = [...text.matchAll(/-?\d{1,3}\.\d{3,}/g)].map((m) => Number(m[0]));
  const found: string[] = [];
  const dLat = metres / 111_320;
  for (let i = 0; i + 1 < numbers.length; i++) {
    const [a, b] = [numbers[i]!, numbers[i + 1]!];
    for (const s of sites) {
      const dLon = dLat / Math.cos((s.location.lat * Math.PI) / 180);
      const hit = (lat: number, lon: number) => Math.abs(lat - s.location.lat) < dLat && Math.abs(lon - s.location.lon) < dLon;
      if (hit(a, b) || hit(b, a)) found.push(`position ${a},${b} within ${metres} m of a site`);
    }
  }
  return found;
}

/** The private strings `text` holds (case-insensitive), and H3 cells finer than `maxResolution`. */
export function leaks(text: string, strings: readonly string[], maxResolution: number): string[] {
  const lower = text.toLowerCase();
  const found = strings.filter((s) => lower.includes(s.toLowerCase()));
  for (const m of text.matchAll(/\b8[0-9a-f]{14}\b/g)) {
    let r: number;
    try {
      r = getResolution(m[0]);
    } catch {
      continue;
    }
    if (r > maxResolution) found.push(`H3 cell ${m[0]} of resolution ${r}`);
  }
  // Ids of the private side, whatever their value.
  for (const m of text.matchAll(/\b(evt|alm)_[0-9a-f]{8,}/g)) found.push(m[0]);
  return found;
}
