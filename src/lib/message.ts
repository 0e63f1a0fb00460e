import { z } from 'zod';

/** The longest message text accepted anywhere in the system, in characters. */
export const MAX_MESSAGE_LENGTH = 10_000;

// Tab and line breaks are text; other control characters (NUL, ESC sequences) would reach the
// terminals and pages that show messages.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

export const messageText = z
  .string({ error: 'msg must be a string' })
  .min(1, 'msg must not be empty')
  .max(MAX_MESSAGE_LENGTH, `msg must be at most ${MAX_MESSAGE_LENGTH} characters`)
  .refine((text) => text.trim().length > 0, 'msg must not be blank')
  // A lone surrogate (JSON "\ud800") has no UTF-8 form: the cluster would store it altered.
  .refine((text) => !/[\uD800-\uDFFF]/u.test(text), 'msg must be valid Unicode text')
  .refine((text) => !CONTROL_CHARACTERS.test(text), 'msg must not contain control characters other than tab and line breaks');

/** What the facade sends to a logging-service and puts on the queue: the unit every service agrees on. */
export const loggedMessage = z.object(
  {
    uuid: z.uuid({ error: 'uuid must be a UUID' }).transform((value) => value.toLowerCase()),
    msg: messageText,
  },
  { error: 'body must be a JSON object {"uuid": "...", "msg": "..."}' },
);

export type LoggedMessage = z.infer<typeof loggedMessage>;

/**
 * One message of POST /logging/batch. `fresh: true` says its sender made the UUID at random just now
 * and has not sent it before (the facade's first try of a POST without an Idempotency-Key): the
 * logging-service then writes it without looking the UUID up first. A wrong hint never changes an
 * answer (the commit still finds a stored UUID); it costs a log position that stays a gap.
 */
export const loggedBatchItem = loggedMessage.extend({ fresh: z.boolean({ error: 'fresh must be true or false' }).optional() });

export type LoggedBatchItem = z.infer<typeof loggedBatchItem>;

/** Most messages one POST /logging/batch takes. */
export const MAX_BATCH_MESSAGES = 256;

/** POST /logging/batch: the items are checked one by one (a bad one fails only itself). */
export const loggedBatch = z.object(
  {
    messages: z
      .array(z.unknown(), { error: 'messages must be an array of {"uuid": "...", "msg": "..."} objects' })
      .min(1, 'messages must not be empty')
      .max(MAX_BATCH_MESSAGES, `at most ${MAX_BATCH_MESSAGES} messages in one batch`),
  },
  { error: 'body must be a JSON object {"messages": [{"uuid": "...", "msg": "..."}, ...]}' },
);

/**
 * Sent with POST /logging as `true` by the facade, which offers the message to the queue next: the
 * log then owes it a delivery, and the redelivery reconciler offers it again if it never reaches a
 * messages-service (docs/failover.md). A message logged without it is only logged.
 */
export const OUTBOX_HEADER = 'outbox';

/** First problem of a failed parse, as one line a client can read. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}
