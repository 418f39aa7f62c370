import type { ProfileOf } from '../schema.js';
import { contactIdClass, contactIdState } from './contact-id.js';
import { emptyOutcome, finishValue, type DecodeOutcome } from './decoded.js';
import { panelTime, type PanelClockOptions } from './panel-time.js';

type LineRule = ProfileOf<'serial-lines'>['lines'][number];

interface Compiled {
  rules: { re: RegExp; rule: LineRule }[];
  ignore: RegExp[];
  points: { re: RegExp; point: ProfileOf<'serial-lines'>['points'][number] }[];
}

const compiled = new WeakMap<object, Compiled>();

function compile(profile: ProfileOf<'serial-lines'>): Compiled {
  let c = compiled.get(profile);
  if (!c) {
    c = {
      rules: profile.lines.map((rule) => ({ re: new RegExp(rule.match, 'u'), rule })),
      ignore: profile.ignore.map((p) => new RegExp(p, 'u')),
      points: profile.points.map((point) => ({ re: new RegExp(point.read.line, 'u'), point })),
    };
    compiled.set(profile, c);
  }
  return c;
}

/** What became of a line: a rule or point knew it, an `ignore` pattern covered it, or nothing did. */
export type LineKind = 'recognized' | 'ignored' | 'unrecognized';

export type LineOutcome = DecodeOutcome & { line: LineKind };

/**
 * Decodes one line of a panel's event output. Lines no rule knows are reported
 * as unrecognized (counted by the adapter, the last one shown in its health)
 * unless the profile says to ignore them. A rule with `time` takes the event
 * time from the line, in the device's time zone. Never throws.
 */
export function decodeLine(profile: ProfileOf<'serial-lines'>, rawLine: string, receivedAt: number, clock: PanelClockOptions = {}): LineOutcome {
  const out: LineOutcome = { ...emptyOutcome(), line: 'unrecognized' };
  // Printers pad with spaces and some panels send NULs or form feeds between events.
  const line = rawLine.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trim();
  if (line.length === 0) return { ...out, line: 'ignored' };
  if (line.length > profile.serial.maxLineLength) {
    out.errors.push(`line: ${line.length} characters is over the ${profile.serial.maxLineLength}-character limit (wrong baud rate?)`);
    return out;
  }
  const c = compile(profile);
  for (const { re, point } of c.points) {
    const m = re.exec(line);
    if (!m) continue;
    out.line = 'recognized';
    const raw = Number(m.groups?.value);
    if (!Number.isFinite(raw)) out.errors.push(`${point.metric}: "${m.groups?.value ?? ''}" is not a number`);
    else out.values.push(finishValue(point, raw, receivedAt));
  }
  for (const { re, rule } of c.rules) {
    const m = re.exec(line);
    if (!m) continue;
    out.line = 'recognized';
    const groups = m.groups ?? {};
    let time = receivedAt;
    if (rule.time) {
      const read = panelTime(groups[rule.time.group], rule.time, receivedAt, clock);
      time = read.time;
      if (read.error) out.errors.push(read.error);
    }
    if ('signal' in rule) {
      const key = rule.signal.key.replace(/\{(\w+)\}/g, (_, name: string) => (groups[name] ?? '').trim().replace(/[^A-Za-z0-9_.-]/g, '_'));
      out.signals.push({ key, class: rule.signal.class, state: rule.signal.state, time, text: line });
    } else if ('contactId' in rule) {
      const code = Number(groups.code);
      const qualifier = Number(groups.qualifier);
      const cls = contactIdClass(code);
      const state = contactIdState(qualifier);
      if (!Number.isInteger(code) || state === undefined) {
        out.errors.push(`contact id: qualifier "${groups.qualifier ?? ''}" or event code "${groups.code ?? ''}" is not valid`);
      } else if (cls) {
        const zone = groups.zone ? `-${Number(groups.zone)}` : '';
        out.signals.push({ key: `cid-${code}${zone}`, class: cls, state, time, text: line });
      }
    } else {
      out.resetAll = true;
      out.resetAt = time;
    }
    break;
  }
  if (out.line === 'unrecognized' && c.ignore.some((re) => re.test(line))) out.line = 'ignored';
  return out;
}
