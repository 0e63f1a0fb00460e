import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { ListingHead, MessagesItem, MessagesListing } from '../lib/contract.js';
import { hazelcastUnavailable } from '../lib/hazelcast.js';
import { HttpError } from '../lib/errors.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import { streamListing } from '../lib/listing.js';
import type { Logger } from '../lib/logger.js';
import { pageFrom } from '../lib/paging.js';
import type { Entry } from '../lib/store/log.js';
import type { ReceivedSet } from '../lib/store/received.js';

const shown = ({ uuid, msg }: Entry): MessagesItem => ({ uuid, msg });

export interface MessagesDeps {
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  /** This instance's received set, once its holder number is known (503 until then). */
  received: () => ReceivedSet | undefined;
}

export function createMessagesApp(deps: MessagesDeps): Express {
  const { instance, logger } = deps;
  const app = createHttpApp({ service: 'messages-service', ...deps, registry: deps.metrics });
  app.get('/messages', async (req, res) => {
    const page = pageFrom(req.query);
    const received = deps.received();
    if (!received) throw new HttpError(503, 'not connected to the store yet');
    const [start, end] = await Promise.all([received.start(), received.end()]);
    const from = Math.max(page.offset, start);
    const head: ListingHead = { instance, start, count: end - start, offset: page.offset };
    if (page.limit !== undefined) {
      res.json({ ...head, messages: (await received.list(from, Math.min(page.offset + page.limit, end))).map(shown) } satisfies MessagesListing);
      return;
    }
    await streamListing(res, head, received.from(from, end), shown, logger);
  });
  finishHttpApp(app, logger, hazelcastUnavailable);
  return app;
}
