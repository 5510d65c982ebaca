import createDebug from 'debug';
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { TempFileManager } from '../manager.js';
import type { TempScope } from '../scope.js';
import { finishUnreadBody } from './unread-body.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's temp scope: removed on response, on request abort and on timeout. */
    tmp: TempScope;
  }
}

const log = createDebug('tempfile-manager:fastify');

/** Options of the Fastify plugin. */
export interface TempFilesPluginOptions {
  /** The manager that makes each request's scope. */
  readonly manager: TempFileManager;
  /**
   * Called when removing a request's temp files fails; the reply is never affected.
   * @default `request.log.error`
   */
  readonly onDisposeError?: (error: unknown, request: FastifyRequest) => void;
}

const plugin: FastifyPluginCallback<TempFilesPluginOptions> = (app: FastifyInstance, options, done) => {
  const manager = options?.manager;
  if (!manager || typeof manager.scope !== 'function') {
    done(new TypeError('tempfile-manager/fastify needs { manager }: register it with { manager: new TempFileManager() }.'));
    return;
  }
  const onDisposeError =
    options.onDisposeError ?? ((error: unknown, request: FastifyRequest) => request.log.error({ err: error }, 'removing temp files failed'));
  const disposed = new WeakSet<FastifyRequest>();
  const dispose = (request: FastifyRequest) => {
    if (disposed.has(request) || !request.tmp) return;
    disposed.add(request);
    request.tmp.remove().catch((error: unknown) => {
      log('removing a request scope failed: %O', error);
      onDisposeError(error, request);
    });
  };
  app.decorateRequest('tmp', null as unknown as TempScope);
  app.addHook('onRequest', (request, _reply, next) => {
    request.tmp = manager.scope();
    next();
  });
  app.addHook('onResponse', (request, _reply, next) => {
    finishUnreadBody(request.raw);
    dispose(request);
    next();
  });
  app.addHook('onRequestAbort', (request, next) => {
    dispose(request);
    next();
  });
  app.addHook('onTimeout', (request, _reply, next) => {
    dispose(request);
    next();
  });
  done();
};

/**
 * The Fastify plugin: every request gets `request.tmp`, a `TempScope` removed on response, on
 * request abort and on timeout.
 *
 * @example
 * import tempFiles from 'tempfile-manager/fastify';
 * await app.register(tempFiles, { manager: mgr });
 * app.post('/upload', async (request) => {
 *   const file = await request.tmp.write(request.raw, { maxBytes: 100 * 1024 ** 2 });
 *   return { size: file.size };
 * });
 */
export const tempFiles = fp(plugin, { fastify: '5.x', name: 'tempfile-manager' });
export default tempFiles;
