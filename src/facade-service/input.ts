import type { Request } from 'express';
import { v5 as uuidv5 } from 'uuid';
import { randomUUID } from 'node:crypto';
import { HttpError } from '../lib/errors.js';
import { describeIssues, messageText } from '../lib/message.js';

/**
 * The message text from any of the bodies clients send: the seed's form field
 * (`requests.post(url, data={"msg": ...})`), JSON `{"msg": ...}` or `{"message": ...}`, or text/plain.
 */
export function messageFromBody(req: Pick<Request, 'body' | 'is'>): string {
  let candidate: unknown;
  if (req.is('application/json') || req.is('application/x-www-form-urlencoded')) {
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'body must be an object with a "msg" field');
    }
    const fields = body as Record<string, unknown>;
    candidate = 'msg' in fields ? fields.msg : fields.message;
    if (candidate === undefined) throw new HttpError(400, 'missing "msg" field');
  } else if (req.is('text/plain')) {
    candidate = req.body;
  } else if (!req.is('*/*')) {
    // No body at all (no Content-Type): nothing to send.
    throw new HttpError(400, 'missing message: send a form field "msg", JSON {"msg": "..."} or text/plain');
  } else {
    throw new HttpError(415, 'unsupported content type: send a form field "msg", JSON {"msg": "..."} or text/plain');
  }
  const parsed = messageText.safeParse(candidate);
  if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
  return parsed.data;
}

/** Fixed namespace for UUIDs derived from Idempotency-Key headers (any constant UUID works; it must never change). */
export const IDEMPOTENCY_NAMESPACE = '7d0c5a2e-1f1e-4b8a-9c51-2f3a6b7e9d10';

const idempotencyKey = /^[\x21-\x7e]{1,255}$/;

/** A new random UUID, or, for a retried POST carrying the same Idempotency-Key, the same UUID again. */
export function uuidFor(key: string | undefined): string {
  if (key === undefined) return randomUUID();
  if (!idempotencyKey.test(key)) throw new HttpError(400, 'Idempotency-Key must be 1-255 visible ASCII characters');
  return uuidv5(key, IDEMPOTENCY_NAMESPACE);
}
