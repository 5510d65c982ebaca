// The Uppy page's script, bundled for the browser by server.mjs (esbuild): @uppy/aws-s3 against
// the API's presign routes (companionEndpoint), with no code of its own for the S3 calls. A file
// over 16 MiB goes up as a multipart upload in parts of 5 MiB; a smaller one as one form POST.
import AwsS3 from '@uppy/aws-s3';
import Uppy from '@uppy/core';

const MiB = 1024 * 1024;
const $ = (id) => document.getElementById(id);

// The route's maxBytes, as Uppy's restriction: a file over it is refused here, with its reason,
// before a byte is sent. Refused later, Uppy could not say why: the bucket closes the connection
// on a form over the limit while the browser still sends (Uppy: "a network error"), and Uppy's
// companion client keeps only the status text of the routes' JSON refusals.
const { maxBytes } = await (await fetch('/uploads/limits')).json();
const uppy = new Uppy({ autoProceed: false, restrictions: { maxFileSize: maxBytes } });
uppy.use(AwsS3, { companionEndpoint: '/uploads', shouldUseMultipart: (file) => file.size > 16 * MiB, getChunkSize: () => 5 * MiB });

uppy.on('upload-progress', (_file, progress) => {
  if (!progress.bytesTotal) return;
  const percent = Math.floor((progress.bytesUploaded / progress.bytesTotal) * 100);
  $('progress').value = percent;
  $('percent').textContent = `${percent}%`;
});

// The upload's key is its receipt: the API checks the object and queues its ticket.
uppy.on('upload-success', async (_file, response) => {
  $('status').textContent = 'Uploaded: the API checks it...';
  const answer = await fetch('/uploads/confirm', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: response.body.key }) });
  const body = await answer.json();
  if (!answer.ok) {
    $('status').textContent = `Upload refused: ${answer.status} ${body.message ?? ''}`;
    return;
  }
  $('status').textContent = `Confirmed: job ${body.job} is queued.`;
  poll(body.job);
});

uppy.on('upload-error', (_file, error) => {
  const refused = /^Companion request failed: (.*)$/.exec(error.message);
  $('status').textContent = refused ? `Upload refused by the API: ${refused[1]}` : `Upload failed: ${error.message}`;
});

$('form').addEventListener('submit', (event) => {
  event.preventDefault();
  const file = $('file').files[0];
  if (!file) return;
  uppy.clear();
  try {
    uppy.addFile({ name: file.name, type: file.type, data: file, source: 'file input' });
  } catch (err) {
    $('status').textContent = `Upload refused: ${err.message} (the limit is ${maxBytes} bytes)`;
    return;
  }
  $('result').hidden = true;
  $('status').textContent = `Uploading ${file.name} to the bucket with Uppy...`;
  uppy.upload();
});

async function poll(id) {
  const job = await (await fetch(`/jobs/${id}`)).json();
  if (job.state === 'queued' || job.state === 'running') {
    $('status').textContent = `Job ${id}: ${job.state}...`;
    setTimeout(() => poll(id), 250);
    return;
  }
  $('status').textContent = `Job ${id}: ${job.state}.`;
  $('result').textContent = JSON.stringify(job.result ?? job, null, 2);
  $('result').hidden = false;
}

$('status').dataset.ready = 'yes';
