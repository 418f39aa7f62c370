import { decodeSampleInput } from './codecs/index.js';
import type { Profile } from './schema.js';

const SAMPLE_TIME = Date.UTC(2026, 0, 1);

/**
 * Decodes every recorded sample of a profile and compares it with what the
 * profile says it should give. Returns one line per mismatch, `samples[i]: ...`;
 * an empty list means the profile reads its device the way its author meant.
 */
export function checkSamples(profile: Profile): string[] {
  const problems: string[] = [];
  profile.samples.forEach((sample, i) => {
    const at = `samples[${i}]${sample.description ? ` (${sample.description})` : ''}`;
    const out = decodeSampleInput(profile, sample.input, SAMPLE_TIME);
    const wantTimes = sample.expect.signals.some((s) => s.time !== undefined);
    const got = {
      readings: out.values.map((v) => ({ metric: v.metric, value: round(v.value), quality: v.quality })),
      // A sample that gives event times is checked for them; one that does not, for the rest.
      signals: out.signals.map((s) => ({ key: s.key, class: s.class, state: s.state, ...(wantTimes ? { time: new Date(s.time).toISOString() } : {}) })),
      errors: out.errors.length,
      line: 'line' in out ? out.line : undefined,
    };
    const want = {
      readings: sample.expect.readings.map((r) => ({ ...r, value: round(r.value) })),
      signals: sample.expect.signals.map((s) => ({ key: s.key, class: s.class, state: s.state, ...(wantTimes ? { time: s.time === undefined ? undefined : new Date(s.time).toISOString() } : {}) })),
      errors: sample.expect.errors,
      line: sample.expect.line ?? got.line,
    };
    for (const part of ['readings', 'signals', 'errors', 'line'] as const) {
      if (JSON.stringify(got[part]) !== JSON.stringify(want[part])) {
        problems.push(`${at}: expected ${part} ${JSON.stringify(want[part])}, decoded ${JSON.stringify(got[part])}${part === 'errors' && out.errors.length ? ` (${out.errors.join('; ')})` : ''}`);
      }
    }
  });
  return problems;
}

/** float32 registers give 7.25 exactly but 8.4 as 8.399999618530273. */
const round = (x: number) => Math.round(x * 1e6) / 1e6;
