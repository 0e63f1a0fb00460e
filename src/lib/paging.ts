import { z } from 'zod';
import { HttpError } from './errors.js';
import { describeIssues } from './message.js';

/** The largest page a GET answers; without ?limit every item is returned (the lab's behaviour). */
export const MAX_PAGE = 10_000;

export interface Page {
  offset: number;
  limit?: number;
}

/**
 * Plain decimal digits only: Number() would also take '1e3', '0x10', '+5', ' 5' and '5.0', so a
 * typo or a probe would page somewhere nobody asked for. 15 digits stay exact as a number.
 */
const decimal = (name: string) =>
  z
    .string({ error: `${name} must be a plain decimal integer, given once` })
    .regex(/^[0-9]{1,15}$/, `${name} must be a plain decimal integer`)
    .transform(Number);

const pageQuery = z.object({
  offset: decimal('offset').default(0),
  limit: decimal('limit')
    .pipe(z.number().min(1, 'limit must be at least 1').max(MAX_PAGE, `limit must be at most ${MAX_PAGE}`))
    .optional(),
});

/** ?offset=K&limit=N of a GET that lists messages; a bad value is the client's 400. */
export function pageFrom(query: unknown): Page {
  const parsed = pageQuery.safeParse(query ?? {});
  if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
  return parsed.data.limit === undefined ? { offset: parsed.data.offset } : { offset: parsed.data.offset, limit: parsed.data.limit };
}

export function applyPage<T>(items: readonly T[], page: Page): T[] {
  return items.slice(page.offset, page.limit === undefined ? undefined : page.offset + page.limit);
}

/** The same page as a query string to pass on ('' for everything). */
export function pageQueryString(page: Page): string {
  const params = new URLSearchParams();
  if (page.offset > 0) params.set('offset', String(page.offset));
  if (page.limit !== undefined) params.set('limit', String(page.limit));
  const text = params.toString();
  return text ? `?${text}` : '';
}
