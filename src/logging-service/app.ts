import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { BatchAnswer, BatchResult, LoggingItem, LoggingListing, ListingHead, RetiredAnswer, StoredAnswer } from '../lib/contract.js';
import { HttpError, errorMessage } from '../lib/errors.js';
import { hazelcastUnavailable } from '../lib/hazelcast.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import { streamListing } from '../lib/listing.js';
import type { Logger } from '../lib/logger.js';
import { OUTBOX_HEADER, describeIssues, loggedBatch, loggedBatchItem, loggedMessage } from '../lib/message.js';
import { counter } from '../lib/metrics.js';
import { pageFrom } from '../lib/paging.js';
import type { Entry, MessageLog } from '../lib/store/log.js';
import type { StoreGauge } from '../lib/store/usage.js';
import type { Retention } from './retention.js';
import type { LogWriter } from './writer.js';

const shown = ({ uuid, msg, loggedBy }: Entry): LoggingItem => ({ uuid, msg, loggedBy });

export interface LoggingDeps {
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  log: MessageLog;
  writer: LogWriter;
  gauge: StoreGauge;
  retention: Retention;
}

export function createLoggingApp(deps: LoggingDeps): Express {
  const { instance, logger, log, writer, gauge } = deps;
  const app = createHttpApp({ service: 'logging-service', ...deps, registry: deps.metrics });
  const logged = counter(deps.metrics, 'mqlab_messages_logged_total', 'POST /logging outcomes', ['outcome']);

  /** Stores one message; its answer as POST /logging gives it, or an HttpError (a 409, a 507). */
  const storeOne = async (uuid: string, msg: string, outbox: boolean, fresh = false): Promise<{ status: 200 | 201; body: StoredAnswer }> => {
    try {
      gauge.admit(Buffer.byteLength(msg, 'utf8'));
    } catch (err) {
      logged.inc({ outcome: 'refused' });
      throw err;
    }
    const outcome = await writer.store({ uuid, msg, outbox, fresh });
    logged.inc({ outcome: outcome.kind });
    if (outcome.kind === 'conflict') {
      logger.warn({ uuid }, 'uuid already stored with other text');
      throw new HttpError(409, 'this uuid is already stored with another text', { uuid });
    }
    if (outcome.kind === 'created') logger.info({ uuid, msg, position: outcome.entry.position }, 'message stored');
    else logger.info({ uuid }, 'message already stored; idempotent repeat');
    const body: StoredAnswer = { status: outcome.kind, uuid, msg, instance, loggedBy: outcome.entry.loggedBy, position: outcome.entry.position };
    return { status: outcome.kind === 'created' ? 201 : 200, body };
  };

  app.post('/logging', async (req, res) => {
    if (!req.is('application/json')) throw new HttpError(415, 'send JSON: {"uuid": "...", "msg": "..."}');
    const parsed = loggedMessage.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
    const { status, body } = await storeOne(parsed.data.uuid, parsed.data.msg, req.get(OUTBOX_HEADER) === 'true');
    res.status(status).json(body);
  });

  // Several messages in one call (the facade gathers concurrent POSTs): each gets the answer that
  // POST /logging would have given it, in order, so one bad or refused message fails only itself.
  app.post('/logging/batch', async (req, res) => {
    if (!req.is('application/json')) throw new HttpError(415, 'send JSON: {"messages": [{"uuid": "...", "msg": "..."}, ...]}');
    const parsed = loggedBatch.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
    const outbox = req.get(OUTBOX_HEADER) === 'true';
    const results = await Promise.all(
      parsed.data.messages.map(async (item): Promise<BatchResult> => {
        const message = loggedBatchItem.safeParse(item);
        if (!message.success) return { status: 400, body: { error: describeIssues(message.error) } };
        try {
          return await storeOne(message.data.uuid, message.data.msg, outbox, message.data.fresh);
        } catch (err) {
          if (err instanceof HttpError) return { status: err.status, body: { error: err.message, ...err.details } };
          const unavailable = hazelcastUnavailable(err);
          if (unavailable === undefined) throw err;
          logger.warn({ err: errorMessage(err), uuid: message.data.uuid }, 'backing store call failed');
          return { status: 503, body: { error: unavailable } };
        }
      }),
    );
    res.json({ instance, results } satisfies BatchAnswer);
  });

  app.get('/logging', async (req, res) => {
    const page = pageFrom(req.query);
    const { start, end } = await log.bounds();
    const from = Math.max(page.offset, start);
    const head: ListingHead = { instance, start, count: end - start, offset: page.offset };
    if (page.limit !== undefined) {
      const entries = await log.committed(from, Math.min(page.offset + page.limit, end));
      res.json({ ...head, messages: entries.map(shown) } satisfies LoggingListing);
      return;
    }
    await streamListing(res, head, log.from(from, end), shown, logger);
  });

  // Retires every message before a position, as Kafka's delete-records does (the lab keeps everything unless asked).
  app.delete('/logging', async (req, res) => {
    const before = req.query.before;
    if (typeof before !== 'string' || !/^[0-9]{1,15}$/.test(before)) throw new HttpError(400, 'give ?before=<position>: every message before it is retired');
    const retired: RetiredAnswer = await deps.retention.retireBefore(Number(before));
    res.json(retired);
  });

  finishHttpApp(app, logger, hazelcastUnavailable);
  return app;
}
