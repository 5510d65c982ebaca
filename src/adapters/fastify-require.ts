// The CommonJS entry of tempfile-manager/fastify: the plugin as `default` and as `tempFiles`, as
// the ES module entry exports it (its declarations are fastify.ts's). One default export, the
// object of both: an entry with a default and named exports makes the bundler guess what
// `module.exports` is, and warn. `__esModule` (last, so that Node's export lexer still finds the
// names) makes a default import compiled to CommonJS take `default`, the plugin.
import { confirmUpload, presignUploads, tempFiles } from './fastify.js';

export default { default: tempFiles, tempFiles, presignUploads, confirmUpload, __esModule: true };
