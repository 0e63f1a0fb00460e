import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Response } from 'express';
import { HttpError } from '../../lib/errors.js';
import type { Readiness } from '../../lib/http.js';
import type { DashboardState, PageState } from '../../lib/contract.js';
import type { DashboardSampler } from './state.js';

/** Copied next to this module by the build (npm run build, and the Dockerfile's builder stage). */
export const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');

/** uPlot's files, served from the npm package (a production dependency, so it is in the image too). */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));

/**
 * Only this origin's own files; no inline script or style, so a message text that slipped into the
 * markup could not run. The page writes every text with textContent anyway.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

export interface DashboardOptions {
  sampler: DashboardSampler;
  readiness: Readiness;
  /** Open event streams at most; one more is answered 503. */
  maxClients?: number;
}

export interface Dashboard {
  router: Router;
  /** Open event streams now. */
  /** Ends every event stream and refuses new ones (a facade shutting down must not wait for them). */
  close(): Promise<void>;
}

export function createDashboard(options: DashboardOptions): Dashboard {
  const { sampler, readiness } = options;
  const maxClients = options.maxClients ?? 32;
  const streams = new Set<Response>();
  let closed = false;
  const router = Router();

  router.use((req, res, next) => {
    if (req.path === '/' || req.path.startsWith('/dashboard/')) res.set(SECURITY_HEADERS);
    next();
  });

  router.get('/', (_req, res) => {
    res.sendFile(join(PUBLIC_DIR, 'index.html'), { headers: { 'Cache-Control': 'no-cache' } });
  });
  const staticOptions = { index: false, fallthrough: false, maxAge: '5m', dotfiles: 'deny' as const };
  router.use('/dashboard/assets', express.static(PUBLIC_DIR, staticOptions));
  router.get('/dashboard/vendor/uPlot.esm.js', (_req, res) => res.sendFile(join(UPLOT_DIR, 'uPlot.esm.js'), { maxAge: '1h' }));
  router.get('/dashboard/vendor/uPlot.min.css', (_req, res) => res.sendFile(join(UPLOT_DIR, 'uPlot.min.css'), { maxAge: '1h' }));

  router.get('/dashboard/state', async (_req, res) => {
    const state = await sampler.state();
    res.set('Cache-Control', 'no-store').json({ ...state, history: sampler.historyList() } satisfies DashboardState);
  });

  router.get('/dashboard/events', async (req, res) => {
    if (closed || readiness.isShuttingDown) throw new HttpError(503, 'this facade is shutting down');
    if (streams.size >= maxClients) throw new HttpError(503, `too many open pages (${maxClients}); close one or try again later`);
    streams.add(res);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    const send = (event: 'state', data: PageState | DashboardState) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    const unsubscribe = sampler.subscribe((state: PageState) => send('state', state));
    req.on('close', () => {
      unsubscribe();
      streams.delete(res);
    });
    // The first state with the whole history; every later one carries its newest sample only.
    try {
      const state = await sampler.state();
      if (!res.writableEnded) send('state', { ...state, history: sampler.historyList() } satisfies DashboardState);
    } catch {
      // The next tick sends one.
    }
  });

  return {
    router,
    async close() {
      closed = true;
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
