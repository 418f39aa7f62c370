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
    const details = doc.errors.map((e) => {
      const line = e.linePos?.[0]?.line ?? 1;
      return `${file}:${line} ${e.message.split('\n')[0]}`;
    });
    throw new CosafeError(code, `${file} is not valid YAML`, { details });
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    return `${file}:${lineOf(doc, lineCounter, path)} ${formatPath(path) || '(root)'}: ${issue.message}`;
  });
  throw new CosafeError(code, `${file} has ${details.length} error${details.length === 1 ? '' : 's'}`, { details });
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
