import { defineConfig, type Options } from 'tsup';
// The entries of package.json's exports, with the optional peers of each (scripts/build-declarations.mjs
// bundles their declarations, scripts/check-consumers.mjs installs each with its peers only).
import entries from './scripts/entries.json' with { type: 'json' };

const entry = Object.fromEntries(Object.entries(entries).map(([name, { source }]) => [name, source]));

const library: Options = {
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
  { ...library, entry: { ...entry, fastify: 'src/adapters/fastify-require.ts' }, format: ['cjs'] },
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
