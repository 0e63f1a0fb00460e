import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { HttpError } from '../lib/errors.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import { describeIssues, loggedMessage } from '../lib/message.js';
import { counter } from '../lib/metrics.js';
import { applyPage, pageFrom } from '../lib/paging.js';
import type { MessageStore } from './store.js';

export interface LoggingDeps {
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  store: MessageStore;
}

export function createLoggingApp(deps: LoggingDeps): Express {
  const { instance, logger, store } = deps;
  const app = createHttpApp({ service: 'logging-service', ...deps, registry: deps.metrics });
  const logged = counter(deps.metrics, 'mqlab_messages_logged_total', 'POST /logging outcomes', ['outcome']);

  app.post('/logging', async (req, res) => {
    if (!req.is('application/json')) throw new HttpError(415, 'send JSON: {"uuid": "...", "msg": "..."}');
    const parsed = loggedMessage.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
    const outcome = await store.store(parsed.data);
    logged.inc({ outcome: outcome.kind });
    const { uuid, msg } = parsed.data;
    if (outcome.kind === 'conflict') {
      logger.warn({ uuid }, 'uuid already stored with other text');
      throw new HttpError(409, 'this uuid is already stored with another text', { uuid });
    }
    if (outcome.kind === 'created') logger.info({ uuid, msg }, 'message stored');
    else logger.info({ uuid }, 'message already stored; idempotent repeat');
    res.status(outcome.kind === 'created' ? 201 : 200).json({
      status: outcome.kind,
      uuid,
      msg,
      instance,
      loggedBy: outcome.stored.loggedBy,
    });
  });

  app.get('/logging', async (req, res) => {
    const page = pageFrom(req.query);
    const messages = await store.all();
    res.json({ instance, count: messages.length, offset: page.offset, messages: applyPage(messages, page).map(({ uuid, msg, loggedBy }) => ({ uuid, msg, loggedBy })) });
  });

  finishHttpApp(app, logger);
  return app;
}
