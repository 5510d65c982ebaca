// The option lists of each entry point (test/unit/option-keys.test.ts) are typed so that an
// interface key left out of its list does not compile (`NoneLeftOut`): this file proves it by
// compiling a program that adds an option to each interface and nothing to the lists, and reading
// which lists fail. A compile-time check: `npm run test:docs` runs it (vitest.config.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');

/** Each options interface, the module that declares it, and the key the program below adds to it. */
const AUGMENTED = [
  { module: 'handles/write', name: 'WriteOptions', added: 'addedToWrite' },
  { module: 'handles/spool', name: 'SpoolOptions', added: 'addedToSpool' },
  { module: 'handles/file', name: 'TempReadStreamOptions', added: 'addedToRead' },
  { module: 'handles/file', name: 'TempWriteStreamOptions', added: 'addedToWriteStream' },
  { module: 'sweep/sweep', name: 'SweepOptions', added: 'addedToSweep' },
  { module: 'keep/move', name: 'KeepOptions', added: 'addedToKeep' },
  { module: 'handoff/claim', name: 'ClaimOptions', added: 'addedToClaim' },
  { module: 'handoff/handoff', name: 'HandoffOptions', added: 'addedToHandoff' },
  { module: 'root/options', name: 'TempFileManagerOptions', added: 'addedToManager' },
  { module: 'uploads/upload-options', name: 'UploadOptions', added: 'addedToUpload' },
  { module: 'adapters/express', name: 'ExpressUploadOptions', added: 'addedToExpress' },
  { module: 'testing/fixture', name: 'TestScopeOptions', added: 'addedToTestScope' },
  { module: 'tus/tus-store', name: 'TusStoreOptions', added: 'addedToTus' },
  { module: 's3/store', name: 'S3StoreOptions', added: 'addedToS3Store' },
  { module: 'azure/store', name: 'AzureStoreOptions', added: 'addedToAzureStore' },
  { module: 's3/intake', name: 'PresignUploadOptions', added: 'addedToPresign' },
  { module: 's3/intake', name: 'ConfirmUploadOptions', added: 'addedToConfirm' },
];

/**
 * The list each source file fails on, and the keys it leaves out: spool()'s holds write()'s,
 * handoffStream()'s handoff()'s; Express's `upload()` lists its own beside the upload options';
 * presignMultipart()'s options are presignUpload()'s but a PUT's, so its list misses the key too.
 */
const EXPECTED = [
  { file: 'handles/write.ts', missing: ['addedToWrite'] },
  { file: 'handles/spool.ts', missing: ['addedToWrite', 'addedToSpool'] },
  { file: 'handles/file.ts', missing: ['addedToRead'] },
  { file: 'handles/file.ts', missing: ['addedToWriteStream'] },
  { file: 'sweep/sweep.ts', missing: ['addedToSweep'] },
  { file: 'keep/move.ts', missing: ['addedToKeep'] },
  { file: 'handoff/claim.ts', missing: ['addedToClaim'] },
  { file: 'handoff/handoff.ts', missing: ['addedToHandoff'] },
  { file: 'manager/stream-handoff.ts', missing: ['addedToHandoff'] },
  { file: 'root/options.ts', missing: ['addedToManager'] },
  { file: 'uploads/upload-options.ts', missing: ['addedToUpload'] },
  { file: 'adapters/express.ts', missing: ['addedToExpress'] },
  { file: 'testing/fixture.ts', missing: ['addedToTestScope'] },
  { file: 'tus/tus-store.ts', missing: ['addedToTus'] },
  { file: 's3/store.ts', missing: ['addedToS3Store'] },
  { file: 'azure/store.ts', missing: ['addedToAzureStore'] },
  { file: 's3/intake.ts', missing: ['addedToPresign'] },
  { file: 's3/intake.ts', missing: ['addedToPresign'] },
  { file: 's3/intake.ts', missing: ['addedToConfirm'] },
];

it('does not compile when an option is added to an options interface but not to its list', () => {
  const project = path.join(scratchDir(), 'option-keys');
  fs.mkdirSync(project);
  const specifier = (module: string) => path.relative(project, path.join(repo, 'src', `${module}.js`)).split(path.sep).join('/');
  const program = [
    ...['manager/stream-handoff', ...new Set(AUGMENTED.map(({ module }) => module))].map((module) => `import '${specifier(module)}';`),
    ...AUGMENTED.map(({ module, name, added }) => `declare module '${specifier(module)}' { interface ${name} { readonly ${added}?: boolean } }`),
    '',
  ];
  fs.writeFileSync(path.join(project, 'added.ts'), program.join('\n'));
  const config = { extends: path.join(repo, 'tsconfig.json'), compilerOptions: { typeRoots: [path.join(repo, 'node_modules/@types')] }, files: ['added.ts'], include: [] };
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(config));
  const tsc = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8', timeout: 150_000 });
  const errors = `${tsc.stdout}${tsc.stderr}`.split('\n').filter((line) => line.includes('error TS'));
  const found = errors.map((line) => {
    const file = /src\/([\w/-]+\.ts)\(/.exec(line.replaceAll('\\', '/'))?.[1];
    const type = /Type '(.+)' does not satisfy the constraint 'never'/.exec(line)?.[1];
    return { file, missing: type?.split(' | ').map((key) => key.replaceAll('"', '')).sort() };
  });
  const sorted = (list: { file: string | undefined; missing: string[] | undefined }[]) => [...list].sort((a, b) => `${a.file}${a.missing}`.localeCompare(`${b.file}${b.missing}`));
  expect(sorted(found), errors.join('\n')).toEqual(sorted(EXPECTED.map(({ file, missing }) => ({ file, missing: [...missing].sort() }))));
}, 180_000);
