// A 415's message says why: a type `accept` does not list, or bytes that are not what the client
// declared (a presigned upload's contentType), whatever `accept` takes.
import { expect, it } from 'vitest';
import { TypeNotAcceptedError } from '../../src/errors.js';

it('a type accept does not list: "<type> is not accepted"', () => {
  const err = new TypeNotAcceptedError({ mime: 'application/pdf', ext: 'pdf' }, ['image/*']);
  expect(err).toMatchObject({ statusCode: 415, declaredType: undefined });
  expect(err.message).toBe('application/pdf is not accepted');
});

it('bytes that contradict the declared type: the message says so, not that the type is refused', () => {
  const err = new TypeNotAcceptedError({ mime: 'application/pdf', ext: 'pdf' }, ['image/png'], 'image/png');
  expect(err).toMatchObject({ statusCode: 415, declaredType: 'image/png' });
  expect(err.message).toBe('the bytes are application/pdf, not the declared image/png');
  expect(err.message).not.toMatch(/is not accepted/);
});
