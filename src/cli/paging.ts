/**
 * Reads a paged list RPC page after page until `limit` items (0: all).
 */

/** One page of a list RPC. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * Up to `limit` items (all when 0) from `fetch`, called with each page's size
 * and token in turn; `more` tells whether the list goes on beyond them.
 */
export async function readPages<T>(
  limit: number,
  fetch: (pageSize: number, pageToken: string) => Promise<Page<T>>,
): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let token = "";
  for (;;) {
    const want = limit === 0 ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, limit - items.length);
    const page = await fetch(want, token);
    items.push(...page.items.slice(0, want));
    token = page.nextPageToken;
    if (token === "") return { items, more: false };
    if (limit !== 0 && items.length >= limit) return { items, more: true };
  }
}

/** The largest page the API serves. */
const MAX_PAGE_SIZE = 1000;
