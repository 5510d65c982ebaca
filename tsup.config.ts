import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', express: 'src/adapters/express.ts', fastify: 'src/adapters/fastify.ts', s3: 'src/s3/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    target: 'node20',
    platform: 'node',
    // The adapters share the library's modules with the main entry: one TempFileError class,
    // so that `instanceof` holds whichever entry made the error.
    splitting: true,
    treeshake: true,
  },
  {
    entry: { cli: 'src/bin.ts' },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    banner: { js: '#!/usr/bin/env node' },
  },
]);
