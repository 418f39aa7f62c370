import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { CosafeError, type ErrorCode } from './errors.js';

/**
 * Reads a YAML (or JSON, which is YAML) file and validates it against a schema.
 * Every problem is reported at once as `file:line path: message`, so a user fixes
 * a config or a profile in one pass, not one error per run.
 */
export function loadYamlFile<S extends z.ZodType>(
  file: string,
  schema: S,
  codes: { read: ErrorCode; invalid: ErrorCode },
): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CosafeError(codes.read, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseYamlText(text, file, schema, codes.invalid);
}

export function parseYamlText<S extends z.ZodType>(text: string, file: string, schema: S, code: ErrorCode): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    // The error's own offset, not `linePos` (set only with prettyErrors): an indentation error on line 12 is reported at 12.
    const details = doc.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line} ${e.message.split('\n')[0]}`);
    throw new CosafeError(code, `${file} is not valid YAML`, { details });
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data;
  const details = explainIssues(result.error.issues).map(({ path, message }) => `${file}:${lineOf(doc, lineCounter, path)} ${formatPath(path) || '(root)'}: ${message}`);
  throw new CosafeError(code, `${file} has ${details.length} error${details.length === 1 ? '' : 's'}`, { details });
}

export interface ExplainedIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Zod's issues as a person can act on them. A value that matches none of a
 * union's forms gets only "Invalid input" from zod; here it gets the problems
 * of the form it comes closest to (a panel rule with a typo in `class` is told
 * the allowed classes, not that it is no rule at all).
 */
export function explainIssues(issues: readonly z.core.$ZodIssue[]): ExplainedIssue[] {
  return issues.flatMap((issue): ExplainedIssue[] => {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    // A record key that breaks its rule: say which rule, not only "Invalid key in record".
    if (issue.code === 'invalid_key' && issue.issues.length) return explainIssues(issue.issues).map((i) => ({ path: [...path, ...i.path], message: i.message }));
    if (issue.code !== 'invalid_union' || !issue.errors?.length) return [{ path, message: issue.message }];
    const branches = issue.errors;
    // A value of the wrong type for every form (`equals: "yes"`): name the types it may have.
    if (branches.every((b) => b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0)) {
      return [{ path, message: `Invalid input: expected ${branches.map((b) => (b[0] as z.core.$ZodIssueInvalidType).expected).join(' or ')}` }];
    }
    const closest = [...branches].sort((a, b) => distance(a) - distance(b))[0]!;
    return explainIssues(closest).map((i) => ({ path: [...path, ...i.path], message: i.message }));
  });
}

/** How far a value is from one form of a union: a wrong type or a key the form does not have means another form was meant. */
function distance(branch: readonly z.core.$ZodIssue[]): number {
  return branch.reduce((n, i) => n + (i.path.length === 0 && (i.code === 'unrecognized_keys' || i.code === 'invalid_type') ? 10 : 1), 0);
}

/** `gateway.devices[0].profile` */
export function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The line of `path` in a YAML text (1 when the text does not parse), for reports about a valid file. */
export function lineOfPath(text: string, path: (string | number)[]): number {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  return lineOf(doc, lineCounter, path);
}

/** The line of the deepest node of `path` that exists in the document. */
function lineOf(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: (string | number)[]): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
  }
  return 1;
}
