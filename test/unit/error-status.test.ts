import { describe, expect, it } from 'vitest';
import { DiskQuotaError, NoSpaceError, QuotaExceededError, SizeLimitError, TempFileError } from '../../src/index.js';
import { AbortedError, FileSystemError, MalformedUploadError, SourceError, TypeNotAcceptedError, UploadLimitError, VerifyFailedError, VerifyRefusedError } from '../../src/errors.js';

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
  [new TypeNotAcceptedError(undefined, ['image/*']), 415],
  [new UploadLimitError('bodyBytes', 1000, undefined, 5000), 413],
  [new VerifyRefusedError('a virus was found (Eicar-Signature)'), 422],
  [new VerifyRefusedError('the checksum does not match', 409), 409],
  [new VerifyFailedError('threw', new Error('connect ECONNREFUSED')), 503],
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

  it('names the option to raise in a limit error’s advice, and the limit in its message', () => {
    expect(new UploadLimitError('fieldNameBytes', 100).advice).toMatch(/`maxFieldNameBytes`/);
    expect(new UploadLimitError('parts', 100)).toMatchObject({
      message: 'the form has more parts than the 100 allowed',
      advice: expect.stringMatching(/`maxParts`/),
    });
  });

  // Express's and Fastify's default handlers send the message of an exposed error to the client.
  it.each(uploadErrors.filter(([error]) => error.expose).map(([error]) => [error.code, error] as const))(
    '%s exposed: its message is what was refused, with no status line (that is statusCode) and no advice',
    (_code, error) => {
      expect(error.message).toMatch(/^[^A-Z0-9]/);
      expect(error.message).not.toMatch(/`|raise|answer the client/i);
    },
  );

  it('keeps what the developer can do on the error', () => {
    expect(new SizeLimitError(1048576)).toMatchObject({
      message: 'the data is larger than 1048576 bytes',
      advice: expect.stringMatching(/raise `maxBytes`/),
    });
    expect(new TypeNotAcceptedError({ mime: 'image/gif', ext: 'gif' }, ['image/png'])).toMatchObject({
      message: 'image/gif is not accepted',
      advice: expect.stringMatching(/`accept` \(image\/png\) does not list image\/gif.*Add the type to `accept`/),
    });
    expect(new SourceError('The source failed: EIO on /srv/private/x. Nothing was kept.')).toMatchObject({
      message: 'the data could not be read',
      advice: expect.stringMatching(/\/srv\/private\/x/),
    });
  });
});
