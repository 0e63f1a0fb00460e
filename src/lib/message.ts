import { z } from 'zod';

/** The longest message text accepted anywhere in the system, in characters. */
export const MAX_MESSAGE_LENGTH = 10_000;

export const messageText = z
  .string({ error: 'msg must be a string' })
  .min(1, 'msg must not be empty')
  .max(MAX_MESSAGE_LENGTH, `msg must be at most ${MAX_MESSAGE_LENGTH} characters`)
  .refine((text) => text.trim().length > 0, 'msg must not be blank');

/** What the facade sends to a logging-service and puts on the queue: the unit every service agrees on. */
export const loggedMessage = z.object({
  uuid: z.uuid({ error: 'uuid must be a UUID' }).transform((value) => value.toLowerCase()),
  msg: messageText,
});

export type LoggedMessage = z.infer<typeof loggedMessage>;

/** First problem of a failed parse, as one line a client can read. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}
