// The option names write() and spool() take at run time are listed once, typed against their
// options' interfaces: a name the interface lacks does not compile (`satisfies`), and neither does
// an interface key left out of the list (`NoneLeftOut`). The second is what this file proves by
// compiling a program that adds an option to each interface and nothing to the lists.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, expectTypeOf, it } from 'vitest';
import { SPOOL_OPTION_KEYS, type SpoolOptions } from '../../src/handles/spool.js';
import { WRITE_OPTION_KEYS, type WriteOptions } from '../../src/handles/write.js';
import { manager, scratchDir } from '../helpers/roots.js';

const repo = path.join(import.meta.dirname, '../..');

it('lists every key of WriteOptions and SpoolOptions, and only those (checked by tsc)', () => {
  expectTypeOf<(typeof WRITE_OPTION_KEYS)[number]>().toEqualTypeOf<keyof WriteOptions>();
  expectTypeOf<(typeof SPOOL_OPTION_KEYS)[number]>().toEqualTypeOf<keyof SpoolOptions>();
  expect(SPOOL_OPTION_KEYS).toEqual([...WRITE_OPTION_KEYS, 'maxMemory']);
});

it('takes at run time every option the types declare, and names them all when one is unknown', async () => {
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

it('does not compile when an option is added to WriteOptions or SpoolOptions but not to its list', () => {
  const project = path.join(scratchDir(), 'option-keys');
  fs.mkdirSync(project);
  const module = (file: string) => path.relative(project, path.join(repo, 'src/handles', file)).split(path.sep).join('/');
  fs.writeFileSync(
    path.join(project, 'added.ts'),
    [
      `import '${module('spool.js')}';`,
      `declare module '${module('write.js')}' { interface WriteOptions { readonly addedToWrite?: boolean } }`,
      `declare module '${module('spool.js')}' { interface SpoolOptions { readonly addedToSpool?: boolean } }`,
      '',
    ].join('\n'),
  );
  const config = {
    extends: path.join(repo, 'tsconfig.json'),
    compilerOptions: { typeRoots: [path.join(repo, 'node_modules/@types')] },
    files: ['added.ts'],
    include: [],
  };
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(config));
  const tsc = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8', timeout: 150_000 });
  const errors = `${tsc.stdout}${tsc.stderr}`.split('\n').filter((line) => line.includes('error TS'));
  const at = (file: string) => errors.filter((line) => line.replaceAll('\\', '/').includes(`src/handles/${file}(`));
  // write()'s list misses the key added to WriteOptions, and spool()'s (write()'s and maxMemory)
  // misses both; nothing else fails.
  expect(at('write.ts')).toEqual([expect.stringMatching(/Type '"addedToWrite"' does not satisfy the constraint 'never'/)]);
  expect(at('spool.ts')).toEqual([expect.stringMatching(/Type '"addedToWrite" \| "addedToSpool"' does not satisfy the constraint 'never'|Type '"addedToSpool" \| "addedToWrite"' does not satisfy the constraint 'never'/)]);
  expect(errors).toHaveLength(2);
}, 180_000);
