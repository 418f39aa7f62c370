import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { profileJsonSchema } from './json-schema.js';

const target = fileURLToPath(new URL('./profile.schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(profileJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target}\n`);
