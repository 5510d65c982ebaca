import { defineConfig } from 'vitest/config';
import { wineTests } from './vitest.config.js';

/**
 * The tests that drive Windows' own node.exe under Wine from Linux (test/wine), for every node.exe
 * major in TFM_WINE_NODES (default 22): `npm run test:wine` fetches node.exe and makes the Wine
 * prefix first; the Wine step of .ci/run runs them on node.exe 22, 24 and 26. The default suite
 * leaves them out.
 */
export default defineConfig({
  test: {
    include: wineTests,
    pool: 'forks',
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
