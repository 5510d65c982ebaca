// GET /report renders a large PDF into a temp file of the request's scope and streams it back
// with its Content-Length. The file is removed when the response ends, or when the client
// aborts, by the tempScope middleware.
//   node examples/pdf-download/server.mjs    (PORT, REPORT_MIB, EXAMPLE_ROOT to change the defaults)
import { pipeline } from 'node:stream/promises';
import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { tempScope } from 'tempfile-manager/express';
import { fakePdf } from './fake-pdf.mjs';

const MiB = 1024 * 1024;
const port = Number(process.env.PORT ?? 3000);
const reportBytes = Number(process.env.REPORT_MIB ?? 32) * MiB;
const mgr = new TempFileManager({ ...(process.env.EXAMPLE_ROOT && { root: process.env.EXAMPLE_ROOT }) });

const app = express();
app.use(tempScope(mgr));

app.get('/report', async (req, res) => {
  // The source is a generator, not the request: stop it ourselves if the client goes away.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  try {
    const pdf = await req.tmp.write(fakePdf(reportBytes), { suffix: '.pdf', signal: gone.signal });
    res.set({
      'Content-Type': 'application/pdf',
      'Content-Length': String(pdf.size),
      'Content-Disposition': 'attachment; filename="report.pdf"',
    });
    await pipeline(pdf.createReadStream(), res);
  } catch (err) {
    if (gone.signal.aborted) return; // the client went away; tempScope removes the file
    throw err;
  }
});

app.get('/stats', (req, res) => res.json(mgr.stats()));

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/report (temp files under ${mgr.root})`);
});

// process.on, not once: with once, the exit hook would find no other listener left and re-raise the signal.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    mgr.close().then(() => process.exit(0));
  });
}
