import type { Reading, ReadingBatch } from '../broker/contract/index.js';

/**
 * The synthetic load, shared by the direct InfluxDB writer and the MQTT
 * publishers so that every phase writes the same points: temperature/humidity
 * sensors (the `mqtt-temperature-humidity` profile), many devices per site, one
 * site and gateway per publisher.
 */
export const DEVICES_PER_SITE = 100;

const POINTS = [
  { metric: 'temperature', unit: 'Cel', base: 21, spread: 4 },
  { metric: 'humidity', unit: '%RH', base: 40, spread: 10 },
  { metric: 'battery', unit: '%', base: 90, spread: 10 },
] as const;
const PROFILE = 'mqtt-temperature-humidity';

/** Each phase has its own site prefix, so that InfluxDB counts one phase's readings and nothing else. */
export const loadSite = (sitePrefix: string, publisher: number) => `${sitePrefix}${publisher}`;
export const loadGateway = (publisher: number) => `load-gw-${publisher}`;

/**
 * The broker publisher `publisher` logs in to when the load is split across
 * the brokers of a cluster: in turn (0 to the first, 1 to the second, ...), so
 * each broker carries the same share (at most one publisher more) and
 * publishers of a phase are spread the same way in every run.
 */
export function brokerForPublisher(publisher: number, brokerUrls: readonly string[]): string {
  if (brokerUrls.length === 0) throw new Error('brokerForPublisher: no broker to publish to');
  if (!Number.isInteger(publisher) || publisher < 0) throw new Error(`brokerForPublisher: publisher must be an index (0, 1, ...), not ${publisher}`);
  return brokerUrls[publisher % brokerUrls.length]!;
}

/** InfluxQL condition that selects one phase's readings (not the smoke detector's, not another phase's). */
export const sitesWhere = (sitePrefix: string) => `site =~ /^${sitePrefix}/`;

/**
 * Batch `seq` (from 1) of one publisher. A reading's time is `t0 + seq * size + i`:
 * unique within the site, hence within every series, so no point overwrites
 * another (InfluxDB keys a point by series and time) and the count must match.
 */
export function makeBatch(o: { sitePrefix: string; publisher: number; seq: number; size: number; t0: number; boot: string }): ReadingBatch {
  const readings: Reading[] = new Array(o.size);
  const first = o.t0 + o.seq * o.size;
  for (let i = 0; i < o.size; i++) {
    const p = POINTS[i % POINTS.length]!;
    const device = Math.floor(i / POINTS.length) % DEVICES_PER_SITE;
    readings[i] = {
      device: `th-${device}`,
      metric: p.metric,
      // Independent of seq, so that BatchEncoder can reuse the readings' JSON.
      value: Math.round((p.base + ((i * 7) % 100) * (p.spread / 100)) * 100) / 100,
      unit: p.unit,
      time: first + i,
      quality: 'good',
      profile: PROFILE,
    };
  }
  return { v: 1, gateway: loadGateway(o.publisher), site: loadSite(o.sitePrefix, o.publisher), boot: o.boot, seq: o.seq, sentAt: Date.now(), readings };
}

/**
 * `JSON.stringify(makeBatch(...))`, byte for byte, at a fraction of the cost:
 * the readings' JSON is made once and only the times are rewritten per batch.
 * Without it, one process of publishers spends its core on JSON.stringify and
 * becomes the bottleneck of the broker's ceiling.
 */
export class BatchEncoder {
  private readonly readings: Buffer;
  private readonly timeAt: number[] = [];

  constructor(private readonly o: { sitePrefix: string; publisher: number; size: number; t0: number; boot: string }) {
    const sample = makeBatch({ ...o, seq: 0 });
    const parts: string[] = [];
    let offset = 1; // after '['
    for (const r of sample.readings) {
      const json = JSON.stringify(r);
      const at = json.indexOf('"time":') + '"time":'.length;
      if (String(r.time).length !== 13 || json.slice(at, at + 13) !== String(r.time)) throw new Error('BatchEncoder needs 13-digit epoch-ms times');
      this.timeAt.push(offset + at);
      parts.push(json);
      offset += json.length + 1; // the comma
    }
    this.readings = Buffer.from(`[${parts.join(',')}]`);
  }

  encode(seq: number, sentAt: number): Buffer {
    const { sitePrefix, publisher, size, t0, boot } = this.o;
    const head = `{"v":1,"gateway":${JSON.stringify(loadGateway(publisher))},"site":${JSON.stringify(loadSite(sitePrefix, publisher))},"boot":${JSON.stringify(boot)},"seq":${seq},"sentAt":${sentAt},"readings":`;
    const headBytes = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headBytes + this.readings.length + 1);
    out.write(head, 0);
    this.readings.copy(out, headBytes);
    out[out.length - 1] = 0x7d; // '}'
    const first = t0 + seq * size;
    for (let i = 0; i < this.timeAt.length; i++) {
      let t = first + i;
      for (let d = headBytes + this.timeAt[i]! + 12; t > 0; d--, t = Math.floor(t / 10)) out[d] = 0x30 + (t % 10);
    }
    return out;
  }
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const epochNow = () => performance.timeOrigin + performance.now();
