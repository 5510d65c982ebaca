import { defineConfig } from 'vitest/config';
import { serviceTests } from './vitest.config.js';

/** The tests that need Redis (redis-server) or a browser (Chromium): `npm run test:e2e`. */
export default defineConfig({
  test: {
    include: serviceTests,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
