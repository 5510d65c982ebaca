import fs from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SizeLimitError } from '../../src/index.js';
import { AbortedError, InvalidOptionError, SourceError, TypeNotAcceptedError } from '../../src/errors.js';
import { SNIFF_BYTES } from '../../src/write/sniff.js';
import { jpeg, mp4, pdf, png, zip } from '../helpers/magic.js';
import { manager } from '../helpers/roots.js';
import { MiB, sha256 } from '../helpers/sources.js';
import { sessionFiles } from '../helpers/wait.js';

/** `data` as an async iterable of chunks of `size` bytes, each a fresh copy. */
async function* chunked(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield Buffer.from(data.subarray(i, i + size));
}

/** A source that records whether it was stopped before its end. */
function tracked(chunks: AsyncIterable<Buffer>) {
  const state = { stopped: false, finished: false, reads: 0 };
  async function* run() {
    try {
      for await (const chunk of chunks) {
        state.reads += 1;
        yield chunk;
      }
      state.finished = true;
    } finally {
      if (!state.finished) state.stopped = true;
    }
  }
  return { source: run(), state };
}

const noise = (bytes: number) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 131 + 7) & 0xff));

describe('write({ accept }): real magic bytes', () => {
  const formats: Array<[string, Buffer, string, string]> = [
    ['PNG', png(3, 2), 'image/png', 'png'],
    ['JPEG', jpeg(), 'image/jpeg', 'jpg'],
    ['PDF', pdf(), 'application/pdf', 'pdf'],
    ['MP4', mp4(), 'video/mp4', 'mp4'],
    ['ZIP', zip(), 'application/zip', 'zip'],
  ];

  it.each(formats)('%s: accepted by its type and its type/*, with detectedType set and every byte kept', async (_label, data, mime, ext) => {
    const mgr = manager();
    const body = Buffer.concat([data, noise(3 * SNIFF_BYTES)]);
    for (const accept of [[mime], [`${mime.split('/')[0]}/*`], ['text/plain', mime.toUpperCase()], ['*/*']]) {
      for (const size of [1, 7, SNIFF_BYTES - 1, SNIFF_BYTES, MiB]) {
        const file = await mgr.write(chunked(body, size), { accept, hash: 'sha256' });
        expect(file.detectedType).toEqual({ mime, ext });
        expect(fs.readFileSync(file.path).equals(body)).toBe(true);
        expect(file.digest).toBe(`sha256:${sha256(body)}`);
        await file.remove();
      }
    }
  });

  it.each(formats)('%s: refused by a list without its type, with 415 and the type found, leaving nothing', async (_label, data, mime) => {
    const mgr = manager();
    const other = mime.startsWith('image/') ? ['application/pdf', 'video/*'] : ['image/*'];
    const { source, state } = tracked(chunked(Buffer.concat([data, noise(MiB)]), 1024));
    const error = await mgr.write(source, { accept: other, suffix: '.bin' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeNotAcceptedError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_TYPE_NOT_ACCEPTED', statusCode: 415, accept: other });
    expect((error as TypeNotAcceptedError).detected?.mime).toBe(mime);
    expect((error as Error).message).toContain(mime);
    expect(state.stopped).toBe(true);
    expect(state.reads).toBeLessThanOrEqual(Math.ceil(SNIFF_BYTES / 1024));
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });

  it('a text file named .png is refused as no known type, whatever its name says', async () => {
    const mgr = manager();
    const text = Buffer.from('just some text pretending to be an image\n'.repeat(200));
    const error = await mgr.write(text, { suffix: '.png', accept: ['image/png'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeNotAcceptedError);
    expect(error).toMatchObject({ statusCode: 415, detected: undefined });
    expect((error as Error).message).toMatch(/^data of no type known by its magic bytes is not accepted$/);
    expect(sessionFiles(mgr)).toEqual([]);
    // Only '*/*' lets data of no known type through, with no detectedType.
    const file = await mgr.write(text, { suffix: '.png', accept: ['*/*'] });
    expect(file.detectedType).toBeUndefined();
    expect(fs.readFileSync(file.path).equals(text)).toBe(true);
  });

  it('image/* refuses a PDF whose first bytes are PNG-like only after the window, and takes a PNG', async () => {
    const mgr = manager();
    const late = Buffer.concat([pdf(), Buffer.alloc(SNIFF_BYTES), png()]);
    await expect(mgr.write(late, { accept: ['image/*'] })).rejects.toMatchObject({ detected: { mime: 'application/pdf' } });
    const file = await mgr.write(Readable.from(chunked(png(40, 40), 5)), { accept: ['image/*'] });
    expect(file.detectedType?.mime).toBe('image/png');
  });

  it('a source shorter than the window is sniffed whole, and an empty one is no known type', async () => {
    const mgr = manager();
    const small = png();
    expect(small.length).toBeLessThan(SNIFF_BYTES);
    const file = await mgr.write(chunked(small, 3), { accept: ['image/png'] });
    expect(fs.readFileSync(file.path).equals(small)).toBe(true);
    expect(file.size).toBe(small.length);
    await expect(mgr.write([], { accept: ['image/png'] })).rejects.toMatchObject({ detected: undefined });
    const empty = await mgr.write([], { accept: ['*/*'] });
    expect(empty.size).toBe(0);
    expect(sessionFiles(mgr)).toHaveLength(2);
  });

  it('a source that fails during the sniff: SourceError, nothing on disk', async () => {
    const mgr = manager();
    const boom = new Error('upstream broke');
    const source = (async function* () {
      yield png().subarray(0, 20);
      throw boom;
    })();
    const error = await mgr.write(source, { accept: ['image/*'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as SourceError).cause).toBe(boom);
    expect(sessionFiles(mgr)).toEqual([]);
    expect(mgr.stats()).toMatchObject({ liveFiles: 0, liveBytes: 0 });
  });

  it('an abort while the sniff waits for bytes: AbortedError, the stream destroyed, nothing on disk', async () => {
    const mgr = manager();
    const stream = new PassThrough();
    stream.write(png().subarray(0, 30));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('gave up')), 50);
    const error = await mgr.write(stream, { accept: ['image/*'], signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(stream.destroyed).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
  });

  it('maxBytes below the window is enforced during the sniff', async () => {
    const mgr = manager();
    const { source, state } = tracked(chunked(Buffer.concat([png(), noise(SNIFF_BYTES)]), 100));
    await expect(mgr.write(source, { accept: ['image/*'], maxBytes: 250 })).rejects.toBeInstanceOf(SizeLimitError);
    expect(state.reads).toBe(3);
    expect(state.stopped).toBe(true);
    expect(sessionFiles(mgr)).toEqual([]);
    const exact = await mgr.write(png(), { accept: ['image/*'], maxBytes: png().length });
    expect(exact.size).toBe(png().length);
  });

  it('without accept nothing is sniffed and detectedType is undefined', async () => {
    const file = await manager().write(png());
    expect(file.detectedType).toBeUndefined();
  });

  it.each([
    ['not an array', 'image/png'],
    ['an empty list', []],
    ['a number in the list', [42]],
    ['no subtype', ['image']],
    ['a wildcard type', ['*/png']],
    ['parameters', ['text/plain; charset=utf-8']],
    ['a space', ['image/ png']],
    ['a path', ['../etc/passwd']],
  ])('refuses accept with %s before touching the disk', async (_label, accept) => {
    const mgr = manager();
    const error = await mgr.write(png(), { accept: accept as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ code: 'ERR_TEMPFILE_INVALID_OPTION', option: 'accept' });
    expect(fs.readdirSync(mgr.root)).toEqual(['.tempfile-manager']);
  });
});

describe('write(): options come from the object itself, never from a polluted prototype', () => {
  it('Object.prototype.accept / maxBytes / onProgress set by an attacker change nothing', async () => {
    const mgr = manager();
    const proto = Object.prototype as Record<string, unknown>;
    const planted = { accept: ['image/png'], maxBytes: 1, onProgress: () => { throw new Error('planted'); } };
    Object.assign(proto, planted);
    try {
      const file = await mgr.write('plain text, no type', {});
      expect(file.size).toBe(19);
      expect(file.detectedType).toBeUndefined();
      const png2 = await mgr.write(png(), { accept: ['*/*'] });
      expect(png2.detectedType?.mime).toBe('image/png');
    } finally {
      for (const key of Object.keys(planted)) delete proto[key];
    }
  });
});
