// Lists: every list is an async iterator over its items, fetching page after page with the
// server's cursor (`for await (const esim of client.esims.list())`); `page()` reads one page.

/** One page of a list. */
export interface Page<T> {
  data: T[];
  hasMore: boolean;
  nextCursor?: string | null;
}

/** The items of a list, newest first, page by page. */
export class Paginated<T> implements AsyncIterable<T> {
  constructor(private readonly fetchPage: (cursor?: string) => Promise<Page<T>>) {}

  /** One page: the first, or the one after `cursor` (a page's `nextCursor`). */
  page(cursor?: string): Promise<Page<T>> {
    return this.fetchPage(cursor);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let cursor: string | undefined;
    do {
      const page = await this.fetchPage(cursor);
      yield* page.data;
      cursor = page.hasMore && page.nextCursor ? page.nextCursor : undefined;
    } while (cursor !== undefined);
  }

  /** Every item (at most `max`), reading as many pages as that takes. */
  async toArray(max = Infinity): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) {
      if (items.length >= max) break;
      items.push(item);
    }
    return items;
  }
}
