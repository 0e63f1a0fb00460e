import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Log lines are gathered into writes of about 4 KB, at least every LOG_FLUSH_MS. One synchronous
 * write per line cost a write(2) per line and woke whatever reads the pipe (the local runner, a
 * container runtime) once per line: at info level, two lines per message made the whole system
 * ~30 % dearer per POST (bench/results.md). pino flushes what is buffered when the process exits,
 * also on an uncaught error; only a kill -9 loses the last LOG_FLUSH_MS of lines.
 */
const LOG_BUFFER_BYTES = 4096;
export const LOG_FLUSH_MS = 200;

/** JSON logs, one line each, labelled with the service and the instance that wrote them. */
export function createLogger(service: string, instance: string, level = 'info'): Logger {
  return pino(
    {
      level,
      base: { service, instance },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS }),
  );
}
