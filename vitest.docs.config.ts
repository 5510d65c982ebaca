import { defineConfig } from 'vitest/config';
import base, { compileChecks } from './vitest.config.js';

/** The compile-time checks that `npm test` leaves out: `npm run test:docs`. */
export default defineConfig({ test: { ...base.test, include: compileChecks, exclude: ['**/node_modules/**'] } });
