import { defineConfig, type Options } from 'tsup';

const entry = { index: 'src/index.ts', express: 'src/adapters/express.ts', fastify: 'src/adapters/fastify.ts', s3: 'src/s3/index.ts', azure: 'src/azure/index.ts', errors: 'src/errors.ts', tus: 'src/tus/index.ts', diagnostics: 'src/diagnostics.ts', testing: 'src/testing/index.ts', web: 'src/adapters/web.ts' };

// `node scripts/build-js.mjs` (the demo, the examples) leaves the declarations out: most of a build's time.
const declarations = process.env.TEMPFILE_MANAGER_DECLARATIONS !== 'off';

const library: Options = {
  dts: declarations,
  target: 'node20',
  platform: 'node',
  // The adapters share the library's modules with the main entry: one TempFileError class,
  // so that `instanceof` holds whichever entry made the error.
  splitting: true,
  treeshake: true,
};

export default defineConfig([
  { ...library, entry, format: ['esm'] },
  // The CommonJS entry of tempfile-manager/fastify has one default export, the object of its
  // `default` and `tempFiles` (fastify-require.ts); its declarations are fastify.ts's.
  { ...library, entry: { ...entry, fastify: 'src/adapters/fastify-require.ts' }, format: ['cjs'], dts: declarations && { entry } },
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
