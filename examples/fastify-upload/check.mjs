// End-to-end self-check of this example (`npm run examples:check`): see ../shared/upload-check.mjs.
import { checkUploadExample } from '../shared/upload-check.mjs';
import { start } from './server.mjs';

await checkUploadExample('fastify-upload', start);
