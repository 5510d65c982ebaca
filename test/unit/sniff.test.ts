// The type sniffer keeps file-type's parsers between detections: each detection in flight must
// have one of its own, so that concurrent uploads never see each other's type.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { detectType } from '../../src/write/sniff.js';
import { jpeg, pdf, png, zip } from '../helpers/magic.js';

describe('detectType', () => {
  it('many detections at once each find the type of their own bytes', async () => {
    const samples = [
      { bytes: png(), ext: 'png' },
      { bytes: jpeg(), ext: 'jpg' },
      { bytes: pdf(), ext: 'pdf' },
      { bytes: zip(), ext: 'zip' },
      { bytes: randomBytes(4100), ext: undefined },
    ];
    const order = Array.from({ length: 200 }, (_, i) => samples[(i * 7) % samples.length]!);
    const found = await Promise.all(order.map(({ bytes }) => detectType(bytes)));
    expect(found.map((type) => type?.ext)).toEqual(order.map(({ ext }) => ext));
  });

  it('a detection after one the parser choked on still finds its type', async () => {
    expect(await detectType(Buffer.from([0x1f, 0x8b, 0x08]))).toMatchObject({ ext: 'gz' });
    expect(await detectType(png())).toMatchObject({ ext: 'png', mime: 'image/png' });
  });
});
