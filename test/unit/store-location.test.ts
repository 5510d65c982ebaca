// A ticket names its backend: the core checks only the generic shape of its `store` (a known kind, a
// few short printable string fields), each store its own fields (S3's bucket rules, Azure's
// container rules); the store guard takes only a value with a well-formed location and every step.
import { describe, expect, it } from 'vitest';
import { parseTicket } from '../../src/handoff/ticket.js';
import { isHandoffStore, locationKey, sameLocation } from '../../src/base/stores.js';
import { parseS3Location } from '../../src/s3/location.js';
import { azureStore } from '../../src/azure/store.js';

const base = { v: 1, id: 'a'.repeat(32), suffix: '.bin', size: 3, createdAt: 1, expiresAt: 2 } as const;
const refused = (store: unknown) => expect(() => parseTicket({ ...base, store })).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' }));

describe("a ticket's store, checked by the core for its shape only", () => {
  it('takes an S3 and an Azure location as they are, and keeps an S3 ticket of before valid', () => {
    expect(parseTicket({ ...base, store: { kind: 's3', bucket: 'uploads', prefix: 'tmp/' } }).store).toEqual({ kind: 's3', bucket: 'uploads', prefix: 'tmp/' });
    const azure = { kind: 'azure', account: 'devstoreaccount1', container: 'uploads', prefix: '' };
    expect(parseTicket(JSON.stringify({ ...base, store: azure })).store).toEqual(azure);
  });

  it('refuses an unknown kind, a kind that is no short lower-case word, too many fields, a value that is no printable string, a field that is no identifier', () => {
    refused({ kind: 'gcs', bucket: 'b', prefix: '' });
    refused({ kind: 'S3', bucket: 'b', prefix: '' });
    refused({ bucket: 'b', prefix: '' });
    refused({ kind: 's3', ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, 'x'])) });
    refused({ kind: 's3', bucket: 1, prefix: '' });
    refused({ kind: 's3', bucket: 'a\nb', prefix: '' });
    refused({ kind: 's3', bucket: 'x'.repeat(1025), prefix: '' });
    refused({ kind: 's3', 'bad-name': 'x' });
    refused(JSON.parse('{"kind":"s3","__proto__":"x"}'));
    refused(null);
    refused(['s3']);
    refused('s3://bucket');
  });

  it("leaves a backend's own rules to it: a bucket name S3 refuses passes the core, and parseS3Location() refuses it; an Azure store its own", () => {
    // Only its names are read: no request is made.
    const client = { getBlockBlobClient: () => {}, listBlobsFlat: () => {}, containerName: 'box', accountName: 'acct1', url: 'http://127.0.0.1:10000/acct1/box' };
    const azure = azureStore({ client: client as never });
    const parseAzureLocation = (location: Parameters<typeof azure.parseLocation>[0]) => azure.parseLocation(location);
    const store = { kind: 's3', bucket: 'Not_A_Bucket', prefix: '' };
    expect(parseTicket({ ...base, store }).store).toEqual(store);
    expect(() => parseS3Location(store)).toThrow(expect.objectContaining({ code: 'ERR_TEMPFILE_BAD_TICKET', field: 'store' }));
    expect(() => parseS3Location({ kind: 's3', bucket: 'ok-bucket', prefix: '', endpoint: 'http://evil' })).toThrow(/unknown field `store.endpoint`/);
    expect(() => parseAzureLocation({ kind: 'azure', account: 'acct1', container: 'a--b', prefix: '' })).toThrow(/container/);
    expect(() => parseAzureLocation({ kind: 'azure', account: 'acct1', container: 'box', prefix: '../' })).toThrow(/prefix/);
    expect(() => parseAzureLocation({ kind: 's3', bucket: 'b', prefix: '' })).toThrow(/not "azure"/);
    expect(parseAzureLocation({ kind: 'azure', account: 'acct1', container: 'box', prefix: 'a/' })).toEqual({ kind: 'azure', account: 'acct1', container: 'box', prefix: 'a/' });
  });

  it('one key per location, whatever the order of its fields; different kinds never equal', () => {
    expect(sameLocation({ kind: 's3', bucket: 'b', prefix: 'p/' }, { prefix: 'p/', bucket: 'b', kind: 's3' })).toBe(true);
    expect(sameLocation({ kind: 's3', bucket: 'b', prefix: '' }, { kind: 'azure', bucket: 'b', prefix: '' })).toBe(false);
    expect(locationKey({ kind: 'azure', account: 'a', container: 'c', prefix: '' })).not.toBe(locationKey({ kind: 'azure', account: 'a', container: 'c', prefix: 'x/' }));
  });
});

describe('isHandoffStore(): as strong as the type it guards', () => {
  // The steps of a store backend, as isHandoffStore() documents them.
  const STORE_STEPS = ['handOff', 'handOffStream', 'claim', 'sweep', 'parseLocation'] as const;
  const steps = Object.fromEntries(STORE_STEPS.map((step) => [step, () => undefined]));
  it('takes a value with a well-formed location and every step of a store', () => {
    expect(isHandoffStore({ location: { kind: 's3', bucket: 'b', prefix: '' }, ...steps })).toBe(true);
  });
  it('refuses one that lacks a step, or whose location is not well formed', () => {
    for (const step of STORE_STEPS) {
      const { [step]: _gone, ...rest } = steps;
      expect(isHandoffStore({ location: { kind: 's3', bucket: 'b', prefix: '' }, ...rest }), step).toBe(false);
    }
    expect(isHandoffStore({ location: {}, ...steps })).toBe(false);
    expect(isHandoffStore({ location: { kind: 'ftp', host: 'x' }, ...steps })).toBe(false);
    expect(isHandoffStore({ location: { kind: 's3', bucket: 7 }, ...steps })).toBe(false);
    expect(isHandoffStore({ location: { kind: 's3', bucket: 'b', prefix: '' }, handOff() {}, claim() {} }), 'the old guard took this').toBe(false);
  });
});
