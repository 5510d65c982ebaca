import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  DiskQuotaError,
  FileSystemError,
  MalformedUploadError,
  NoSpaceError,
  QuotaExceededError,
  SizeLimitError,
  SourceError,
  TempFileError,
  UploadLimitError,
} from '../../src/index.js';

// What an upload can raise, and the status Express's and Fastify's default handlers answer with.
const uploadErrors: [TempFileError, number][] = [
  [new SizeLimitError(10), 413],
  [new UploadLimitError('files', 1, 'f'), 413],
  [new UploadLimitError('fieldBytes', 1, 'f'), 413],
  [new MalformedUploadError('truncated', 'cut off'), 400],
  [new SourceError('bad'), 400],
  [new NoSpaceError('/r'), 507],
  [new DiskQuotaError('/r'), 507],
  [new QuotaExceededError(1), 507],
  [new AbortedError('the client went away'), 499],
];

describe('statusCode and expose', () => {
  it.each(uploadErrors.map(([error, status]) => [error.code, error, status] as const))('%s answers %i', (_code, error, status) => {
    expect(error.statusCode).toBe(status);
    expect(error.expose).toBe(status < 500);
  });

  it('anything else is the server’s fault: 500, not exposed', () => {
    const error = new FileSystemError('write', '/r/x', Object.assign(new Error('io'), { code: 'EIO' }));
    expect(error).toMatchObject({ statusCode: 500, expose: false });
  });

  it('names the option to raise in a limit message', () => {
    expect(new UploadLimitError('fieldNameBytes', 100).message).toMatch(/`maxFieldNameBytes`/);
    expect(new UploadLimitError('parts', 100).message).toMatch(/more parts than the 100 allowed.*`maxParts`/);
  });
});
