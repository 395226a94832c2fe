/**
 * Paging in process (memory store, and the Redis store's filtering of an index page): sorts candidates by a key
 * tuple, starts after the cursor's key and cuts `limit` items. Cursors are those of model/ports.ts (encodeCursor).
 */
import type { Page, PageQuery } from '../model/ports.js';
import { decodeCursor, encodeCursor, pageLimit } from '../model/ports.js';

export type SortKey = (string | number)[];

/** Code-unit order of two keys of the same shape. */
export function compareKeys(a: SortKey, b: SortKey): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

/** A listing's name, its key shape and direction: one per list method, so a cursor of one is refused by another. */
export interface Listing {
  name: string;
  shape: readonly ('s' | 'n')[];
  /** 1: ascending, -1: descending (on every part of the key). */
  direction: 1 | -1;
}

export const LISTINGS = {
  clientsById: { name: 'clients', shape: ['s'], direction: 1 },
  clientsByName: { name: 'clients-by-name', shape: ['s', 's'], direction: 1 },
  users: { name: 'users', shape: ['s'], direction: 1 },
  grantsOfUser: { name: 'user-grants', shape: ['n', 's'], direction: -1 },
  grantsOfClient: { name: 'client-grants', shape: ['n', 's'], direction: -1 },
  consentsOfUser: { name: 'user-consents', shape: ['n', 's'], direction: -1 },
  consentsOfClient: { name: 'client-consents', shape: ['n', 's'], direction: -1 },
} as const satisfies Record<string, Listing>;

/** The cursor's key (undefined for the first page); InvalidCursorError for a cursor of another listing. */
export function cursorKey(listing: Listing, query: PageQuery): SortKey | undefined {
  return decodeCursor(listing.name, query.cursor, listing.shape);
}

/** The page of `items` (any order) after the cursor, in the listing's order. */
export function pageOf<T>(items: T[], keyOf: (item: T) => SortKey, listing: Listing, query: PageQuery): Page<T> {
  const limit = pageLimit(query);
  const after = cursorKey(listing, query);
  const d = listing.direction;
  const keyed = items.map((item) => ({ item, key: keyOf(item) }));
  const rest = after === undefined ? keyed : keyed.filter((k) => d * compareKeys(k.key, after) > 0);
  rest.sort((a, b) => d * compareKeys(a.key, b.key));
  const page = rest.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((k) => k.item),
    ...(rest.length > limit && last ? { nextCursor: encodeCursor(listing.name, last.key) } : {}),
  };
}

/**
 * The least string greater than every string starting with `prefix` (code-point order, which UTF-8 byte order and
 * the "C" collation share): the exclusive end of a prefix's range. Undefined when there is none (only U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((ch) => ch.codePointAt(0) as number);
  while (points.length > 0) {
    const last = (points.pop() as number) + 1;
    if (last > 0x10ffff) continue;
    points.push(last >= 0xd800 && last <= 0xdfff ? 0xe000 : last);
    return String.fromCodePoint(...points);
  }
  return undefined;
}
