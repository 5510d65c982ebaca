// What the upload examples share: how long a handed-off upload waits for its worker. (Each failure
// reaches the client with its own `err.statusCode`: see docs/uploads.md.)
export const TICKET_TTL_MS = 10 * 60 * 1000;
