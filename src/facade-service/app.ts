import type { Express, Router } from 'express';
import type { Registry } from 'prom-client';
import type { FacadeAnswer, PostAnswer, QueueInfo } from '../lib/contract.js';
import { HttpError, errorMessage } from '../lib/errors.js';
import { hazelcastUnavailable } from '../lib/hazelcast.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import type { StoreGauge } from '../lib/store/usage.js';
import { pageFrom } from '../lib/paging.js';
import type { Facade } from './facade.js';
import { messageFromBody, uuidFor } from './input.js';
import { writeWholeSets } from './whole-sets.js';

export interface FacadeDeps {
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  facade: Facade;
  /** The store's capacity: a POST is refused (507) before anything is written once it is full. */
  gauge: StoreGauge;
  /** The queue's size, partition owner and the member list (throws a 503 HttpError while not connected). */
  queueInfo: () => Promise<QueueInfo>;
  /** The live page at / and its /dashboard/ routes (dashboard/routes.ts). */
  dashboard?: Router;
}

export function createFacadeApp(deps: FacadeDeps): Express {
  const { facade, logger } = deps;
  const app = createHttpApp({ service: 'facade-service', ...deps, registry: deps.metrics });

  app.post('/facade', async (req, res) => {
    const msg = messageFromBody(req);
    const key = req.get('idempotency-key');
    const uuid = key === undefined ? facade.freshUuid() : uuidFor(key);
    deps.gauge.admit(Buffer.byteLength(msg, 'utf8'));
    // A UUID made here at random is new to the store: its first try skips the lookup (loggedBatchItem).
    const result = await facade.post({ uuid, msg, fresh: key === undefined });
    logger.info({ uuid, logging: result.logging.instance, status: result.status }, 'message accepted');
    res.status(result.status === 'created' ? 201 : 200).json(result satisfies PostAnswer);
  });

  app.get('/facade', async (req, res) => {
    const page = pageFrom(req.query);
    if (page.limit === undefined) {
      const opened = await facade.openWholeSets(page.offset);
      if ('error' in opened.logging && 'error' in opened.messages) {
        throw new HttpError(503, 'neither logging-service nor messages-service answered', { logging: opened.logging.error, messages: opened.messages.error });
      }
      await writeWholeSets(res, opened, page.offset, logger);
      return;
    }
    const sets = await facade.read(page);
    if (sets.logging.error && sets.messages.error) {
      throw new HttpError(503, 'neither logging-service nor messages-service answered', { logging: sets.logging.error, messages: sets.messages.error });
    }
    res.json({ ...sets, partial: Boolean(sets.logging.error ?? sets.messages.error) } satisfies FacadeAnswer);
  });

  // Which member holds the queue (for `kubectl delete pod` on it, and the drill's --kube mode).
  app.get('/queue', async (_req, res) => {
    try {
      const info: QueueInfo = await deps.queueInfo();
      res.json(info);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(503, `the queue could not be read: ${errorMessage(err)}`);
    }
  });

  if (deps.dashboard) app.use(deps.dashboard);
  finishHttpApp(app, logger, hazelcastUnavailable);
  return app;
}
