// What the upload examples share: how long a handed-off upload waits for its worker, and how each
// failure of write() reaches the client (a client that went away gets nothing).
export const TICKET_TTL_MS = 10 * 60 * 1000;

export const STATUS = {
  ERR_TEMPFILE_SIZE_LIMIT: 413,
  ERR_TEMPFILE_QUOTA_EXCEEDED: 503,
  ERR_TEMPFILE_NO_SPACE: 507,
  ERR_TEMPFILE_SOURCE: 400, // the multipart stream broke off: a malformed or truncated body
};
