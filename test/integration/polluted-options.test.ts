// Every option reader takes the options given by the caller, never one inherited from a polluted
// Object.prototype: an attacker who can set `Object.prototype.start`, `.append`, `.manager` or
// `.onDisposeError` must not change what a stream reads or writes, which manager an upload goes
// to, or make a set-up call throw. Each case is the call made with no options (or options
// without the planted name), where a plain property read would fall through to the prototype.
import fs from 'node:fs';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { tempScope, upload } from '../../src/adapters/express.js';
import tempFiles from '../../src/adapters/fastify.js';
import type { TempFileManager } from '../../src/index.js';
import { manager } from '../helpers/roots.js';

const planted: string[] = [];

function pollute(values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values)) {
    Object.defineProperty(Object.prototype, key, { value, configurable: true, writable: true, enumerable: false });
    planted.push(key);
  }
}

afterEach(() => {
  for (const key of planted.splice(0)) delete (Object.prototype as Record<string, unknown>)[key];
});

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('file streams', () => {
  it('createReadStream() reads the whole file whatever Object.prototype.start and .end say', async () => {
    const file = manager().file('.txt');
    fs.writeFileSync(file.path, 'the whole content');
    pollute({ start: 4, end: 8 });
    expect(await readAll(file.createReadStream())).toBe('the whole content');
    expect(await readAll(file.createReadStream({ highWaterMark: 4 }))).toBe('the whole content');
  });

  it('createWriteStream() truncates whatever Object.prototype.append says', async () => {
    const file = manager().file('.txt');
    fs.writeFileSync(file.path, 'old content');
    pollute({ append: true });
    const stream = file.createWriteStream();
    await new Promise<void>((resolve, reject) => stream.end('new', () => resolve()).on('error', reject));
    expect(fs.readFileSync(file.path, 'utf8')).toBe('new');
  });
});

describe('adapters set up with a polluted Object.prototype', () => {
  it('tempScope(mgr) takes no onDisposeError or drain from the prototype', () => {
    pollute({ onDisposeError: 'log', drain: 'everything' });
    expect(() => tempScope(manager())).not.toThrow();
    expect(() => tempScope(manager(), {})).not.toThrow();
  });

  it('upload({ field }) takes no manager or refusals from the prototype', () => {
    pollute({ manager: 'not a manager', refusals: 'never' });
    expect(() => upload({ field: 'file' })).not.toThrow();
  });

  it('the Fastify plugin takes no onDisposeError or drain from the prototype', async () => {
    pollute({ onDisposeError: 'log', drain: 'everything' });
    const app = Fastify();
    await expect(app.register(tempFiles, { manager: manager() as TempFileManager }).ready()).resolves.toBeDefined();
    await app.close();
  });
});
