import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import type { Logger } from './logger.js';
import { createHttpServer, type Readiness } from './http.js';
import { errorMessage } from './errors.js';

export interface ServeOptions {
  app: Express;
  logger: Logger;
  readiness: Readiness;
  host: string;
  port: number;
  shutdownDelayMs: number;
  /** Run in order as soon as shutdown begins, while the server still answers (e.g. stop consuming). */
  onShutdownStart?: Array<() => Promise<void>>;
  /** Run in order after the HTTP server has closed: shut clients down. */
  onShutdown?: Array<() => Promise<void>>;
  /** Longest a shutdown may take before the process exits anyway. */
  shutdownTimeoutMs?: number;
}

export interface RunningService {
  server: Server;
  /** The shutdown sequence SIGTERM runs; resolves when everything is closed. */
  shutdown(reason: string): Promise<void>;
}

/**
 * A request Node's HTTP parser refuses before any route sees it (headers too large, both
 * Content-Length and Transfer-Encoding, a control character in a header, a bad chunk): the same
 * status Node would send, with a JSON error like every other answer, and the connection closed.
 */
function answerMalformedRequest(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, error] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request timed out']
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? [413, 'chunk extensions are too large']
          : [400, 'malformed HTTP request'];
  const body = JSON.stringify({ error });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Listens, and on SIGTERM/SIGINT shuts down the way Kubernetes expects (after podinfo): turn
 * unready at once, keep serving for one probe period so endpoints drop this pod, close the server
 * (finishing in-flight requests), then close clients.
 */
export async function serve(options: ServeOptions): Promise<RunningService> {
  const { app, logger, readiness, host, port } = options;
  const server = createHttpServer(app).listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('error', (err) => logger.error({ err }, 'server error'));
  server.on('clientError', answerMalformedRequest);
  // Slightly above common load-balancer idle timeouts, so the LB closes idle connections first.
  server.keepAliveTimeout = 65_000;
  logger.info({ host, port }, 'listening');

  // Once the server is closing, every answer ends its connection: a client keeping a connection
  // busy (a steady load, a peer service's keep-alive agent) would otherwise hold close() open.
  let closing = false;
  server.on('request', (_req, res: ServerResponse) => {
    if (closing && !res.headersSent) res.setHeader('connection', 'close');
  });

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shutdownPromise ??= (async () => {
      logger.info({ reason, delayMs: options.shutdownDelayMs }, 'shutting down: unready');
      readiness.beginShutdown();
      await runSteps(options.onShutdownStart, logger);
      if (options.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.shutdownDelayMs));
      await new Promise<void>((resolve) => {
        // close() waits for every open connection, and closes only those idle at this moment: a
        // keep-alive connection whose request is still running would stay open after its answer
        // (up to keepAliveTimeout). Closing the idle ones again until none is left ends those too.
        closing = true;
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      logger.info('server closed');
      await runSteps(options.onShutdown, logger);
      logger.info('shutdown complete');
    })();
    return shutdownPromise;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    const timer = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, options.shutdownTimeoutMs ?? 30_000);
    timer.unref();
    void shutdown(signal).then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { server, shutdown };
}

async function runSteps(steps: Array<() => Promise<void>> | undefined, logger: Logger): Promise<void> {
  for (const step of steps ?? []) {
    try {
      await step();
    } catch (err) {
      logger.warn({ err: errorMessage(err) }, 'shutdown step failed');
    }
  }
}
