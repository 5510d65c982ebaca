import createDebug from 'debug';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TempFileManager } from '../manager.js';
import type { TempScope } from '../scope.js';
import { finishUnreadBody } from './unread-body.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** This request's temp scope: everything in it is removed when the response ends or the client goes away. */
      tmp: TempScope;
    }
  }
}

const log = createDebug('tempfile-manager:express');

/** Options of {@link tempScope}. */
export interface ExpressTempScopeOptions {
  /**
   * Called when removing a request's temp files fails. The response is never affected.
   * @default a process warning (`process.emitWarning`) and a debug log line
   */
  readonly onDisposeError?: (error: unknown, req: Request) => void;
}

/**
 * Express middleware: gives every request `req.tmp`, a `TempScope` removed with everything in
 * it when the response has been sent or the client went away.
 *
 * @example
 * import { tempScope } from 'tempfile-manager/express';
 * app.use(tempScope(mgr));
 * app.post('/upload', async (req, res) => {
 *   const file = await req.tmp.write(req, { maxBytes: 100 * 1024 ** 2 });
 *   res.json({ size: file.size });
 * });
 */
export function tempScope(manager: TempFileManager, options: ExpressTempScopeOptions = {}): RequestHandler {
  const onDisposeError = options.onDisposeError ?? warn;
  return (req: Request, res: Response, next: NextFunction): void => {
    let scope: TempScope;
    try {
      scope = manager.scope();
    } catch (error) {
      next(error);
      return;
    }
    req.tmp = scope;
    // Once the answer is out, do not read all the rest of a body nobody wants.
    res.once('finish', () => finishUnreadBody(req));
    // 'close' comes once the response is sent, and also when the client aborts first.
    res.once('close', () => {
      scope.remove().catch((error: unknown) => onDisposeError(error, req));
    });
    next();
  };
}

function warn(error: unknown): void {
  log('removing a request scope failed: %O', error);
  process.emitWarning(`tempfile-manager: removing a request's temp files failed: ${String(error)}`, 'TempFileWarning');
}
