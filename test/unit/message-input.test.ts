import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '../../src/lib/errors.js';
import { MAX_MESSAGE_LENGTH, loggedMessage } from '../../src/lib/message.js';
import { messageFromBody, uuidFor } from '../../src/facade-service/input.js';

/** A request as express presents it after its body parsers: a parsed body and a content-type test. */
function req(contentType: string | undefined, body: unknown) {
  return {
    body,
    is: (type: string | string[]) => {
      if (!contentType) return null;
      const types = Array.isArray(type) ? type : [type];
      return types.some((t) => t === '*/*' || t === contentType) ? contentType : false;
    },
  } as Parameters<typeof messageFromBody>[0];
}

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
  return 0;
}

describe('messageFromBody', () => {
  it('reads the seed client form field, JSON msg or message, and text/plain', () => {
    assert.equal(messageFromBody(req('application/x-www-form-urlencoded', { msg: 'msg1' })), 'msg1');
    assert.equal(messageFromBody(req('application/json', { msg: 'a' })), 'a');
    assert.equal(messageFromBody(req('application/json', { message: 'b' })), 'b');
    assert.equal(messageFromBody(req('text/plain', 'c d')), 'c d');
  });

  it('answers 400 for missing, empty, blank or non-string text, 415 for other content types', () => {
    assert.equal(
      status(() => messageFromBody(req(undefined, undefined))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', {}))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', { msg: '' }))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', { msg: '   ' }))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', { msg: 5 }))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', ['x']))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/json', { msg: 'x'.repeat(MAX_MESSAGE_LENGTH + 1) }))),
      400,
    );
    assert.equal(
      status(() => messageFromBody(req('application/xml', '<msg/>'))),
      415,
    );
  });
});

describe('uuidFor', () => {
  it('derives the same UUID from the same Idempotency-Key, and different ones otherwise', () => {
    assert.equal(uuidFor('order-42'), uuidFor('order-42'));
    assert.notEqual(uuidFor('order-42'), uuidFor('order-43'));
    assert.notEqual(uuidFor(undefined), uuidFor(undefined));
    assert.ok(loggedMessage.safeParse({ uuid: uuidFor('k'), msg: 'm' }).success);
  });

  it('rejects keys with spaces, control characters or over 255 characters', () => {
    assert.equal(
      status(() => uuidFor('has space')),
      400,
    );
    assert.equal(
      status(() => uuidFor('')),
      400,
    );
    assert.equal(
      status(() => uuidFor('x'.repeat(256))),
      400,
    );
  });
});

describe('loggedMessage', () => {
  it('accepts a UUID and text, lower-casing the UUID', () => {
    const parsed = loggedMessage.parse({ uuid: 'A976FF15-859D-4213-A59A-527BDC8C7FE7', msg: 'hi' });
    assert.equal(parsed.uuid, 'a976ff15-859d-4213-a59a-527bdc8c7fe7');
  });

  it('rejects a missing or malformed UUID and missing text', () => {
    assert.equal(loggedMessage.safeParse({ uuid: 'nope', msg: 'x' }).success, false);
    assert.equal(loggedMessage.safeParse({ msg: 'x' }).success, false);
    assert.equal(loggedMessage.safeParse({ uuid: uuidFor('a') }).success, false);
  });
});
