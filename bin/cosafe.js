#!/usr/bin/env node
// The published entry point. cosafe ships TypeScript sources and runs them through
// tsx's loader, so there is no build step to forget and no stale dist/ to debug.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
