// What the tus store holds of an upload under way once create() returned: nothing of the client's
// (a finished upload's state is kept a minute on purpose, to answer for it). The creation's
// one-minute timer, which only forgets the id, was made inside create(), whose other closure held
// the upload's state: every POST's metadata stayed reachable for a minute.
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Upload } from '@tus/server';
import { expect, it } from 'vitest';
import { tusStore } from '../../src/tus/index.js';
import { manager } from '../helpers/roots.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

it('create() keeps none of an upload\'s metadata once it returned', async () => {
  const mgr = manager();
  const { datastore } = await tusStore({ manager: mgr });
  let metadata: Record<string, string> | undefined = { filename: 'a.bin', note: 'y'.repeat(1000) };
  const metadataRef = new WeakRef(metadata);
  await datastore.create(new Upload({ id: 'upload-1', offset: 0, size: 10, metadata }));
  metadata = undefined;
  for (let i = 0; i < 3; i++) {
    await sleep(10); // a WeakRef is cleared only after the job that made or read it
    gc();
  }
  expect(metadataRef.deref()).toBeUndefined();
  await mgr.close();
});
