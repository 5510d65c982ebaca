// The option names each entry point takes at run time are listed once, typed against its options'
// interface: a name the interface lacks does not compile (`satisfies`), and neither does an
// interface key left out of the list (`NoneLeftOut`). The second is what this file proves, by
// compiling a program that adds an option to each interface and nothing to the lists.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, expectTypeOf, it } from 'vitest';
import { CLAIM_OPTION_KEYS, type ClaimOptions } from '../../src/handoff/claim.js';
import { HANDOFF_OPTION_KEYS, type HandoffOptions } from '../../src/handoff/handoff.js';
import { READ_STREAM_OPTION_KEYS, WRITE_STREAM_OPTION_KEYS, type TempReadStreamOptions, type TempWriteStreamOptions } from '../../src/handles/file.js';
import { SPOOL_OPTION_KEYS, type SpoolOptions } from '../../src/handles/spool.js';
import { WRITE_OPTION_KEYS, type WriteOptions } from '../../src/handles/write.js';
import { KEEP_OPTION_KEYS, type KeepOptions } from '../../src/keep/move.js';
import { STREAM_HANDOFF_OPTION_KEYS, type StreamHandoffOptions } from '../../src/manager/stream-handoff.js';
import { SWEEP_OPTION_KEYS, type SweepOptions } from '../../src/sweep/sweep.js';
import { UPLOAD_OPTION_KEYS, type UploadOptions } from '../../src/adapters/upload-options.js';
import { MANAGER_OPTION_KEYS } from '../../src/root/options.js';
import { TEST_SCOPE_OPTION_KEYS, type TestScopeOptions } from '../../src/testing/fixture.js';
import { TUS_STORE_OPTION_KEYS, tusStore, type TusStoreOptions } from '../../src/tus/tus-store.js';
import { S3_STORE_OPTION_KEYS, s3Store, type S3StoreOptions } from '../../src/s3/store.js';
import { AZURE_STORE_OPTION_KEYS, azureStore, type AzureStoreOptions } from '../../src/azure/store.js';
import {
  CONFIRM_OPTION_KEYS,
  PRESIGN_MULTIPART_OPTION_KEYS,
  PRESIGN_OPTION_KEYS,
  type ConfirmUploadOptions,
  type PresignMultipartOptions,
  type PresignUploadOptions,
} from '../../src/s3/intake.js';
import type { TempFileManagerOptions } from '../../src/index.js';
import { manager, scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');

it('lists every key of each options interface, and only those (checked by tsc)', () => {
  expectTypeOf<(typeof WRITE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof WriteOptions>();
  expectTypeOf<(typeof SPOOL_OPTION_KEYS)[number]>().toEqualTypeOf<keyof SpoolOptions>();
  expectTypeOf<(typeof READ_STREAM_OPTION_KEYS)[number]>().toEqualTypeOf<keyof TempReadStreamOptions>();
  expectTypeOf<(typeof WRITE_STREAM_OPTION_KEYS)[number]>().toEqualTypeOf<keyof TempWriteStreamOptions>();
  expectTypeOf<(typeof SWEEP_OPTION_KEYS)[number]>().toEqualTypeOf<keyof SweepOptions>();
  expectTypeOf<(typeof KEEP_OPTION_KEYS)[number]>().toEqualTypeOf<keyof KeepOptions>();
  expectTypeOf<(typeof CLAIM_OPTION_KEYS)[number]>().toEqualTypeOf<keyof ClaimOptions>();
  expectTypeOf<(typeof HANDOFF_OPTION_KEYS)[number]>().toEqualTypeOf<keyof HandoffOptions>();
  expectTypeOf<(typeof STREAM_HANDOFF_OPTION_KEYS)[number]>().toEqualTypeOf<keyof StreamHandoffOptions>();
  expectTypeOf<(typeof MANAGER_OPTION_KEYS)[number]>().toEqualTypeOf<keyof TempFileManagerOptions>();
  expectTypeOf<(typeof UPLOAD_OPTION_KEYS)[number]>().toEqualTypeOf<keyof UploadOptions>();
  expectTypeOf<(typeof TEST_SCOPE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof TestScopeOptions>();
  expectTypeOf<(typeof TUS_STORE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof TusStoreOptions>();
  expectTypeOf<(typeof S3_STORE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof S3StoreOptions>();
  expectTypeOf<(typeof AZURE_STORE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof AzureStoreOptions>();
  expectTypeOf<(typeof PRESIGN_OPTION_KEYS)[number]>().toEqualTypeOf<keyof PresignUploadOptions>();
  expectTypeOf<(typeof PRESIGN_MULTIPART_OPTION_KEYS)[number]>().toEqualTypeOf<keyof PresignMultipartOptions>();
  expectTypeOf<(typeof CONFIRM_OPTION_KEYS)[number]>().toEqualTypeOf<keyof ConfirmUploadOptions>();
  expect(SPOOL_OPTION_KEYS).toEqual([...WRITE_OPTION_KEYS, 'maxMemory']);
});

it('write() and spool() take at run time every option their types declare, and name them all when one is unknown', async () => {
  const mgr = manager();
  for (const [call, keys] of [['write()', WRITE_OPTION_KEYS], ['spool()', SPOOL_OPTION_KEYS]] as const) {
    const make = call === 'write()' ? mgr.write.bind(mgr) : mgr.spool.bind(mgr);
    const refusal = await make('x', { unknownOption: 1 } as never).then(
      () => new Error('not refused'),
      (err: unknown) => err as Error,
    );
    expect(refusal).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'unknownOption' });
    expect(refusal.message).toContain(`The options are: ${keys.map((key) => `\`${key}\``).join(', ')}.`);
  }
});

it('tusStore(), the stores and the presigned uploads take at run time every option their types declare, and name them all when one is unknown', async () => {
  const refusal = async (call: () => unknown): Promise<Error> => {
    try {
      await call();
    } catch (err) {
      return err as Error;
    }
    return new Error('not refused');
  };
  const s3 = s3Store({ client: { send: () => {}, config: {} } as never, bucket: 'uploads' });
  const calls = [
    ['tusStore()', TUS_STORE_OPTION_KEYS, () => tusStore({ unknownOption: 1 } as never)],
    ['s3Store()', S3_STORE_OPTION_KEYS, () => s3Store({ unknownOption: 1 } as never)],
    ['azureStore()', AZURE_STORE_OPTION_KEYS, () => azureStore({ unknownOption: 1 } as never)],
    ['presignUpload()', PRESIGN_OPTION_KEYS, () => s3.presignUpload({ unknownOption: 1 } as never)],
    ['presignMultipart()', PRESIGN_MULTIPART_OPTION_KEYS, () => s3.presignMultipart({ unknownOption: 1 } as never)],
    ['confirmUpload()', CONFIRM_OPTION_KEYS, () => s3.confirmUpload('key', { unknownOption: 1 } as never)],
  ] as const;
  for (const [call, keys, make] of calls) {
    const error = await refusal(make);
    expect(error, call).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'unknownOption' });
    expect(error.message, call).toContain(`The options are: ${keys.map((key) => `\`${key}\``).join(', ')}.`);
  }
});

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
  { module: 'adapters/upload-options', name: 'UploadOptions', added: 'addedToUpload' },
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
  { file: 'adapters/upload-options.ts', missing: ['addedToUpload'] },
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
