import type { Express, Response } from 'express';
import type { Registry } from 'prom-client';
import { HttpError, errorMessage } from '../lib/errors.js';
import { hazelcastUnavailable } from '../lib/hazelcast.js';
import { createHttpApp, drained, finishHttpApp, type Readiness } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import { FRESH_UUID_HEADER, describeIssues, loggedMessage } from '../lib/message.js';
import { counter } from '../lib/metrics.js';
import { pageFrom } from '../lib/paging.js';
import type { ListedMessage, MessageStore } from './store.js';

const shown = ({ uuid, msg, loggedBy }: ListedMessage) => ({ uuid, msg, loggedBy });

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
    const outcome = await store.store(parsed.data, req.get(FRESH_UUID_HEADER) === 'true');
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
    if (page.limit !== undefined) {
      const { count, messages } = await store.page({ offset: page.offset, limit: page.limit });
      res.json({ instance, count, offset: page.offset, messages: messages.map(shown) });
      return;
    }
    await streamAll(res, page.offset);
  });

  /**
   * The whole set (from offset on), written as it is read, a chunk of positions at a time, so an
   * instance holding 100,000 messages answers them with memory for a chunk, not for the set. A
   * failure before the first byte is the usual JSON error; after it, the connection is cut, so the
   * client sees a broken answer rather than a short list that looks complete.
   */
  async function streamAll(res: Response, offset: number): Promise<void> {
    const [count, end] = await Promise.all([store.size(), store.positionCount()]);
    const chunks = store.from(offset, end);
    let chunk = await chunks.next();
    res.status(200).type('application/json');
    res.write(`{"instance":${JSON.stringify(instance)},"count":${count},"offset":${offset},"messages":[`);
    let first = true;
    try {
      while (!chunk.done) {
        let text = '';
        for (const message of chunk.value) {
          text += `${first ? '' : ','}${JSON.stringify(shown(message))}`;
          first = false;
        }
        // The client may have gone while the chunk was read: stop reading for nobody.
        if (res.destroyed) return;
        if (!res.write(text)) await drained(res);
        chunk = await chunks.next();
      }
      res.end(']}');
    } catch (err) {
      logger.warn({ err: errorMessage(err) }, 'whole-set read failed after the answer began; connection cut');
      res.destroy();
    } finally {
      await chunks.return(undefined);
    }
  }

  finishHttpApp(app, logger, hazelcastUnavailable);
  return app;
}
