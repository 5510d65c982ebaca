// The bucket of the object-store mode, run on a host of the bed (the runner's own namespace has no
// route to the bridge):
//   node bucket.mjs create    makes TFM_BUCKET (or finds it made)
//   node bucket.mjs list      prints {"objects":[...],"uploads":[...]}: every key under the prefix
//                             and every incomplete multipart upload there, as the store sees them
// With TFM_AZURE, the Azure mode's container: `uploads` are the blobs that have only uncommitted
// blocks (a staged upload never committed).
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { gatewayClient } from '../fixtures/s3-client.mjs';
import { azuriteContainer } from '../fixtures/azure-client.mjs';
import { PREFIX } from './common.mjs';

const Bucket = process.env.TFM_BUCKET;

if (process.env.TFM_AZURE) {
  const container = azuriteContainer(JSON.parse(process.env.TFM_AZURE), Bucket);
  if (process.argv[2] === 'create') {
    await container.createIfNotExists();
    console.log(`container ${Bucket} ready`);
  } else {
    const names = async (uncommitted) => {
      const found = [];
      for await (const blob of container.listBlobsFlat({ prefix: PREFIX, includeUncommitedBlobs: uncommitted })) found.push(blob.name);
      return found;
    };
    const objects = await names(false);
    const uploads = (await names(true)).filter((name) => !objects.includes(name));
    console.log(JSON.stringify({ objects, uploads }));
  }
  process.exit(0);
}
const client = gatewayClient(JSON.parse(process.env.TFM_S3));

if (process.argv[2] === 'create') {
  try {
    await client.send(new CreateBucketCommand({ Bucket }));
  } catch (err) {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  }
  console.log(`bucket ${Bucket} ready`);
} else if (process.argv[2] === 'list') {
  const objects = [];
  let ContinuationToken;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: PREFIX, ContinuationToken }));
    for (const object of page.Contents ?? []) objects.push(object.Key);
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  const uploads = [];
  let KeyMarker;
  let UploadIdMarker;
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: PREFIX, KeyMarker, UploadIdMarker }));
    for (const upload of page.Uploads ?? []) uploads.push(upload.Key);
    if (!page.IsTruncated) break;
    [KeyMarker, UploadIdMarker] = [page.NextKeyMarker, page.NextUploadIdMarker];
  }
  console.log(JSON.stringify({ objects, uploads }));
} else {
  console.error('usage: node bucket.mjs create|list');
  process.exit(2);
}
