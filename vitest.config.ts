import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    // Hooks start real servers and cosafe processes: on a loaded 2-core CI that can take minutes.
    hookTimeout: 180_000,
    // Integration and e2e tests start real servers; two cores do not gain from more parallelism.
    maxWorkers: 2,
  },
});
