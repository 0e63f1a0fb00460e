import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { hazelcastUnavailable } from '../lib/hazelcast.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import { applyPage, pageFrom } from '../lib/paging.js';
import type { ReceivedMessages } from './received.js';

export interface MessagesDeps {
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  received: ReceivedMessages;
}

export function createMessagesApp(deps: MessagesDeps): Express {
  const { instance, received } = deps;
  const app = createHttpApp({ service: 'messages-service', ...deps, registry: deps.metrics });
  app.get('/messages', (req, res) => {
    const page = pageFrom(req.query);
    res.json({ instance, count: received.size, offset: page.offset, messages: applyPage(received.list(), page).map(({ uuid, msg }) => ({ uuid, msg })) });
  });
  finishHttpApp(app, deps.logger, hazelcastUnavailable);
  return app;
}
