import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs, one line each, labelled with the service and the instance that wrote them. */
export function createLogger(service: string, instance: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service, instance },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
