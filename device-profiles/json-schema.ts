import { z } from 'zod';
import { Profile } from './schema.js';

/**
 * The JSON Schema of a profile file, for editors (YAML language servers read a
 * `# yaml-language-server: $schema=...` comment). Generated from the one zod
 * declaration; `npm run profiles:schema` writes it and a test keeps it in sync.
 */
export function profileJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(Profile, { io: 'input', unrepresentable: 'any' }),
    title: 'cosafe device profile',
  };
}
