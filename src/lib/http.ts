import { IncomingMessage, STATUS_CODES, ServerResponse, createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { TextDecoder } from 'node:util';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { ErrorAnswer, HealthAnswer, ReadyAnswer } from './contract.js';
import { HttpError, errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import { httpDurationHistogram } from './metrics.js';

/**
 * What /readyz reports: named checks (config loaded, Hazelcast connected, ...) that must all be
 * true, and a shutdown flag that turns the instance unready as soon as SIGTERM arrives.
 */
export class Readiness {
  private readonly checks = new Map<string, { ok: boolean; detail?: string }>();
  private shuttingDown = false;

  constructor(names: readonly string[] = []) {
    for (const name of names) this.checks.set(name, { ok: false, detail: 'not yet' });
  }

  set(name: string, ok: boolean, detail?: string): void {
    this.checks.set(name, detail === undefined ? { ok } : { ok, detail });
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  isOk(name: string): boolean {
    return this.checks.get(name)?.ok === true;
  }

  isReady(): boolean {
    return !this.shuttingDown && [...this.checks.values()].every((check) => check.ok);
  }

  snapshot(): Record<string, { ok: boolean; detail?: string }> {
    return Object.fromEntries(this.checks);
  }
}

export interface HttpAppOptions {
  service: string;
  instance: string;
  logger: Logger;
  registry: Registry;
  readiness: Readiness;
  /** Largest request body accepted; larger ones get 413. */
  bodyLimit?: string;
}

/** The route template a request matched (never its raw path, which would explode label cardinality). */
function routeTemplate(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  return 'unmatched';
}

/**
 * An express app with what every service shares: request metrics, /healthz, /readyz, /metrics and
 * body parsers. The service adds its routes, then calls finishHttpApp for the 404 and error handlers.
 */
export function createHttpApp(options: HttpAppOptions): Express {
  const { service, instance, registry, readiness } = options;
  const app = express();
  app.disable('x-powered-by');
  // An ETag is a SHA-1 of every answer's body, POSTs' too; no client here sends If-None-Match.
  app.set('etag', false);
  app.set('trust proxy', false);
  const duration = httpDurationHistogram(registry);

  app.use((req, res, next) => {
    const stop = duration.startTimer();
    res.on('finish', () => stop({ method: req.method, route: routeTemplate(req), status_code: String(res.statusCode) }));
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', service, instance } satisfies HealthAnswer);
  });
  app.get('/readyz', (_req, res) => {
    const ready = readiness.isReady();
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : readiness.isShuttingDown ? 'shutting down' : 'not ready',
      service,
      instance,
      checks: readiness.snapshot(),
    } satisfies ReadyAnswer);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  const limit = options.bodyLimit ?? '64kb';
  // A Map, not an object: a Content-Type such as "constructor" must find nothing.
  const parsers: ReadonlyMap<string, RequestHandler> = new Map([
    ['application/json', express.json({ limit, verify: strictlyDecoded(false) })],
    ['application/x-www-form-urlencoded', express.urlencoded({ extended: false, limit, parameterLimit: 100, verify: strictlyDecoded(true) })],
    ['text/plain', express.text({ limit, type: 'text/plain', verify: strictlyDecoded(false) })],
  ]);
  // One look at the media type picks the parser; in a row, each parser would parse the Content-Type
  // again to decide whether the body is its kind (a share of every POST's CPU in the profile).
  app.use((req, res, next) => {
    const type = req.headers['content-type'];
    const parser = type === undefined ? undefined : parsers.get(mediaType(type));
    if (parser) parser(req, res, next);
    else next();
  });
  return app;
}

/**
 * The HTTP server for an app from createHttpApp. Express gives every request and response the app's
 * prototypes (Object.setPrototypeOf on each); here Node creates them with those prototypes already,
 * which makes express's call a no-op. Changing an object's prototype gives it a map of its own in
 * V8: every request's objects then reach express's and the service's code with a new shape
 * (inline caches miss, code deoptimizes), and they lived on into the old generation (~1.7 MB
 * promoted per scavenge under load, a full collection twice a second). Measured on express alone
 * (a POST route answering JSON, 16 connections): 215-273 µs of the server's CPU per request with
 * the prototypes changed per request, 92-118 without (docs/performance.md).
 */
export function createHttpServer(app: Express): Server {
  // Node's own constructors are plain functions (Node 20 and 24): called on an object whose prototype is the app's.
  function AppRequest(this: IncomingMessage, socket: Socket): void {
    Reflect.apply(IncomingMessage, this, [socket]);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, req: IncomingMessage, options?: object): void {
    Reflect.apply(ServerResponse, this, [req, options]);
  }
  AppResponse.prototype = app.response;
  return createServer(
    {
      IncomingMessage: AppRequest as unknown as typeof IncomingMessage,
      ServerResponse: AppResponse as unknown as typeof ServerResponse,
    },
    app,
  );
}

/** The media type of a Content-Type value, lower-cased, without its parameters. */
function mediaType(contentType: string): string {
  const end = contentType.indexOf(';');
  return (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

/** A 4xx the body parsers pass to the error handler under its type. */
function bodyError(status: number, type: string): Error {
  return Object.assign(new Error(type), { status, type });
}

/** The bytes of a form body's percent escapes (%C3%A9 → C3 A9), the rest as it is. */
function percentDecodedBytes(text: string): Buffer {
  const bytes: number[] = [];
  const raw = Buffer.from(text.replace(/\+/g, ' '), 'utf8');
  for (let i = 0; i < raw.length; i += 1) {
    const hex = raw[i] === 0x25 ? raw.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(raw[i] ?? 0);
    }
  }
  return Buffer.from(bytes);
}

/**
 * The body parsers' verify hook: text that is not valid in its charset (invalid UTF-8, and in a
 * form also a percent escape such as %FF that decodes to invalid UTF-8) is the client's 400. The
 * parsers themselves would replace the bad bytes with U+FFFD (or keep "%FF" as it is), and the
 * service would store text other than what was sent.
 */
function strictlyDecoded(form: boolean) {
  return (_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string | null): void => {
    const charset = (encoding ?? 'utf-8').toLowerCase();
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charset, { fatal: true });
    } catch {
      throw bodyError(415, 'charset.unsupported');
    }
    let text: string;
    try {
      text = decoder.decode(body);
    } catch {
      throw bodyError(400, 'entity.text.invalid');
    }
    if (form && decoder.encoding === 'utf-8') {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(percentDecodedBytes(text));
      } catch {
        throw bodyError(400, 'entity.text.invalid');
      }
    }
  };
}

const bodyParserMessages: Record<string, string> = {
  'entity.parse.failed': 'request body is not valid JSON',
  'entity.text.invalid': 'request body is not valid text in its charset (UTF-8 unless the Content-Type says otherwise)',
  'entity.too.large': 'request body is too large',
  'encoding.unsupported': 'request body encoding is not supported',
  'charset.unsupported': 'request body charset is not supported',
  'request.aborted': 'request was aborted',
  'request.size.invalid': 'request body size does not match Content-Length',
  'parameters.too.many': 'too many form fields',
};

/**
 * Errors of a service's backing store that mean "try again later", not a bug: the function returns
 * the 503's text for such an error, else undefined. A service passes its own (the Hazelcast ones,
 * src/lib/hazelcast.ts), so this kernel does not load a client the service does not use.
 */
export type UnavailableError = (err: unknown) => string | undefined;

export function finishHttpApp(app: Express, logger: Logger, unavailable?: UnavailableError): void {
  // Error texts never repeat what the client sent (a path, a value) nor what a library said about
  // it: such text would reflect the caller's input into logs, pages and terminals that show errors.
  app.use((_req, res) => {
    res.status(404).json({ error: 'no route for this method and path' } satisfies ErrorAnswer);
  });
  const onError: ErrorRequestHandler = (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: err.message, ...err.details } satisfies ErrorAnswer);
      return;
    }
    const unavailableText = unavailable?.(err);
    if (unavailableText !== undefined) {
      // The store is unreachable or failing over: a retryable condition, not a bug here.
      logger.warn({ err: errorMessage(err), method: req.method, path: req.path }, 'backing store call failed');
      res.status(503).json({ error: unavailableText } satisfies ErrorAnswer);
      return;
    }
    const withStatus = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
    const status = typeof withStatus.status === 'number' ? withStatus.status : typeof withStatus.statusCode === 'number' ? withStatus.statusCode : 500;
    if (status >= 400 && status < 500) {
      const known = typeof withStatus.type === 'string' ? bodyParserMessages[withStatus.type] : undefined;
      res.status(status).json({ error: known ?? (STATUS_CODES[status] ?? 'bad request').toLowerCase() } satisfies ErrorAnswer);
      return;
    }
    logger.error({ err, method: req.method, path: req.path }, 'unhandled error');
    res.status(500).json({ error: 'internal error' } satisfies ErrorAnswer);
  };
  app.use(onError);
}

/** Resolves when a response that refused more data (write answered false) can take it again, or has closed. */
export function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
