// tusStore() reaches a manager's parts through a port that only a manager's constructor fills:
// an object that carries what a manager carries, or is dressed as one, never passes for one.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TempFileManager } from '../../src/index.js';
import { tusStore } from '../../src/tus/index.js';
import { manager, scratchDir } from '../helpers/roots.js';

it('an object carrying a real manager\'s own properties, symbols included, or dressed as one, is refused, and nothing is made', async () => {
  const real = manager();
  const victim = scratchDir();
  const copies: object[] = [
    // every own property of a real manager, its symbols and the one earlier versions read included
    Object.defineProperties({}, Object.getOwnPropertyDescriptors(real)),
    Object.assign(Object.create(TempFileManager.prototype) as object, { root: victim }),
    { [Symbol.for('tempfile-manager.manager-parts')]: { context: {}, rootContext: { root: victim } }, root: victim },
    new Proxy(real, {}),
  ];
  for (const fake of copies) {
    await expect(tusStore({ manager: fake as TempFileManager })).rejects.toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'manager' });
  }
  expect(fs.readdirSync(victim)).toEqual([]);
  const { datastore } = await tusStore({ manager: real });
  expect(datastore).toBeDefined();
  expect(fs.existsSync(path.join(real.root, 'tus'))).toBe(false); // made on first use, not by the store's creation
});
