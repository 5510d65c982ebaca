import { defineConfig } from 'vitest/config';
import base, { longTests } from './vitest.config.js';

/** The long matrices and kill rounds that `npm test` leaves out: `npm run test:long`. */
export default defineConfig({ test: { ...base.test, include: longTests, exclude: ['**/node_modules/**'] } });
