// A valid one-page PDF of about `bytes` bytes, streamed: the page's content stream is padded with
// comment lines. Offsets for the cross-reference table are counted as the parts go out.
const LINE = Buffer.from(`%${'0123456789abcdef'.repeat(4)}\n`);
const BLOCK = Buffer.concat(Array.from({ length: 16 * 1024 }, () => LINE)); // 1 MiB of padding

export async function* fakePdf(bytes) {
  const text = 'BT /F1 24 Tf 72 770 Td (Quarterly report) Tj ET\n';
  const padding = Math.max(0, bytes - 1024) - (Math.max(0, bytes - 1024) % LINE.length);
  const offsets = [];
  let position = 0;
  function* part(chunk) {
    position += Buffer.byteLength(chunk);
    yield chunk;
  }
  function* object(n, body) {
    offsets[n] = position;
    yield* part(`${n} 0 obj\n${body}\nendobj\n`);
  }

  yield* part('%PDF-1.4\n');
  yield* object(1, '<< /Type /Catalog /Pages 2 0 R >>');
  yield* object(2, '<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  yield* object(3, '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>');
  offsets[4] = position;
  yield* part(`4 0 obj\n<< /Length ${text.length + padding} >>\nstream\n${text}`);
  for (let left = padding; left > 0; left -= BLOCK.length) yield* part(left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left));
  yield* part('\nendstream\nendobj\n');
  yield* object(5, '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  const xref = position;
  const entries = offsets.slice(1).map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  yield* part(`xref\n0 6\n0000000000 65535 f \n${entries}trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
}
