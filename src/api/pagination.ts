/** Cursor pagination (docs/architecture.md §4): limit 1–100 (default 10), starting_after / ending_before ids, newest first. */
import { z } from '@hono/zod-openapi';
import { invalidParam } from '../errors.ts';

export const listQueryShape = {
  limit: z.coerce.number().int().min(1).max(100).default(10).openapi({ description: 'Objects per page, 1–100.', example: 10 }),
  starting_after: z.string().max(100).optional().openapi({ description: 'Cursor: the id of the last object of the previous page.' }),
  ending_before: z.string().max(100).optional().openapi({ description: 'Cursor: the id of the first object of the next page (pages backwards).' }),
};

export interface Page {
  limit: number;
  /** Return objects older than this sequence number. */
  afterSeq?: bigint;
  /** Return objects newer than this sequence number. */
  beforeSeq?: bigint;
}

/**
 * A page from rows read `limit + 1` at a time in cursor order (newest first; oldest first when
 * paging backwards with `beforeSeq`): the first `limit`, newest first, and whether more exist.
 */
export function pageOf<R>(rows: R[], page: Page): { data: R[]; hasMore: boolean } {
  const data = rows.slice(0, page.limit);
  if (page.beforeSeq !== undefined) data.reverse();
  return { data, hasMore: rows.length > page.limit };
}

/** Resolves cursor ids to sequence numbers with `seqOf` (which must be merchant-scoped). */
export async function resolvePage(
  q: { limit: number; starting_after?: string | undefined; ending_before?: string | undefined },
  seqOf: (id: string) => Promise<bigint | undefined>,
): Promise<Page> {
  if (q.starting_after && q.ending_before) {
    throw invalidParam('ending_before', 'Use either starting_after or ending_before, not both.');
  }
  const page: Page = { limit: q.limit };
  if (q.starting_after) {
    const seq = await seqOf(q.starting_after);
    if (seq === undefined) throw invalidParam('starting_after', `starting_after "${q.starting_after}" is not an object of this list.`, 'cursor_invalid');
    page.afterSeq = seq;
  }
  if (q.ending_before) {
    const seq = await seqOf(q.ending_before);
    if (seq === undefined) throw invalidParam('ending_before', `ending_before "${q.ending_before}" is not an object of this list.`, 'cursor_invalid');
    page.beforeSeq = seq;
  }
  return page;
}

export function listSchema<T extends z.ZodTypeAny>(item: T, name: string) {
  return z
    .object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean() })
    .openapi(name);
}
