/**
 * The paged listings on Redis, read from index keys, never from the keyspace (no KEYS/SCAN):
 * - grants of a user / a client: the ZSETs `{u:<id>}:grants` and `{c:<id>}:grants` (grant id -> expiresAt) that
 *   createGrant writes with the grant; consents of a user / a client: `{u:<id>}:consents`, `{c:<id>}:consents`. Paged
 *   by score (expiresAt) descending, ties by member descending; an entry whose record is gone is skipped.
 * - clients and users: the lexicographic ZSETs `{clients}:byid`, `{clients}:byname`, `{users}:byname`, written by
 *   the same scripts as the records (one slot). Data written before they existed is indexed on the first listing
 *   that finds an index's size differing from its catalogue's (SCARD / HLEN), once per scope.
 */
import type { ClientQuery, Page, PageQuery, UserQuery } from '../../model/ports.js';
import { encodeCursor, pageLimit } from '../../model/ports.js';
import type { ClientRecord, ConsentRecord, GrantRecord, UserRecord } from '../../model/records.js';
import { LISTINGS, cursorKey, prefixEnd, type Listing } from '../paging.js';
import { clientKeys, nameMember } from './clients.js';
import { toGrant } from './grants.js';
import { BATCH, inBatches, mgetJson, parseJson, type RedisContext } from './redis-context.js';

/**
 * Members of a ZSET scored by expiry, after the cursor (score, member), in (score desc, member desc) order: at most
 * `limit + 1` of them (the extra one tells whether more follow).
 */
async function byScore(
  ctx: RedisContext,
  key: string,
  listing: Listing,
  query: PageQuery,
): Promise<{ entries: [string, number][]; limit: number }> {
  const limit = pageLimit(query);
  const after = cursorKey(listing, query) as [number, string] | undefined;
  const max = after === undefined ? '+inf' : String(after[0]);
  const min = `(${ctx.clock.now()}`;
  const entries: [string, number][] = [];
  // Ties at the cursor's score come first (REV); skip those not after it, reading on past them in batches.
  for (let offset = 0; entries.length <= limit;) {
    const count = limit + 1 - entries.length + (after === undefined ? 0 : BATCH);
    const reply = await ctx.guard(() =>
      ctx.client.zrange(key, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, count, 'WITHSCORES'),
    );
    for (let i = 0; i + 1 < reply.length && entries.length <= limit; i += 2) {
      const member = reply[i] as string;
      const score = Number(reply[i + 1]);
      if (after !== undefined && score === after[0] && member >= after[1]) continue;
      entries.push([member, score]);
    }
    if (reply.length < count * 2) break;
    offset += count;
  }
  return { entries, limit };
}

/** The page of records found for `entries` (read by `read`, in order, absent ones skipped). */
async function pageFrom<T>(
  listing: Listing,
  found: { entries: [string, number][]; limit: number },
  read: (members: string[]) => Promise<(T | undefined)[]>,
): Promise<Page<T>> {
  const { entries, limit } = found;
  const shown = entries.slice(0, limit);
  const records = await read(shown.map(([member]) => member));
  const last = shown.at(-1);
  return {
    items: records.filter((r): r is T => r !== undefined),
    ...(entries.length > limit && last ? { nextCursor: encodeCursor(listing.name, [last[1], last[0]]) } : {}),
  };
}

async function readGrants(ctx: RedisContext, ids: string[]): Promise<(GrantRecord | undefined)[]> {
  const now = ctx.clock.now();
  // One slot per grant: separate reads, sent together.
  return Promise.all(
    ids.map(async (id) => toGrant(await ctx.guard(() => ctx.client.hgetall(ctx.keys.grant(id))), now)),
  );
}

export async function listGrantsOfUser(
  ctx: RedisContext,
  userId: string,
  query: PageQuery,
): Promise<Page<GrantRecord>> {
  const listing = LISTINGS.grantsOfUser;
  const found = await byScore(ctx, ctx.keys.userGrants(userId), listing, query);
  return pageFrom(listing, found, (ids) => readGrants(ctx, ids));
}

export async function listGrantsOfClient(
  ctx: RedisContext,
  clientId: string,
  query: PageQuery,
): Promise<Page<GrantRecord>> {
  const listing = LISTINGS.grantsOfClient;
  const found = await byScore(ctx, ctx.keys.clientGrants(clientId), listing, query);
  return pageFrom(listing, found, (ids) => readGrants(ctx, ids));
}

function liveConsent(ctx: RedisContext, json: string | null): ConsentRecord | undefined {
  const consent = parseJson<ConsentRecord>(json);
  return consent !== undefined && consent.expiresAt > ctx.clock.now() ? consent : undefined;
}

export async function listConsentsOfUser(
  ctx: RedisContext,
  userId: string,
  query: PageQuery,
): Promise<Page<ConsentRecord>> {
  const listing = LISTINGS.consentsOfUser;
  const found = await byScore(ctx, ctx.keys.userConsents(userId), listing, query);
  return pageFrom(listing, found, async (clientIds) => {
    if (clientIds.length === 0) return [];
    // The user's consents share the user's slot: one MGET.
    const values = await ctx.guard(() => ctx.client.mget(clientIds.map((c) => ctx.keys.consent(userId, c))));
    return values.map((v) => liveConsent(ctx, v));
  });
}

export async function listConsentsOfClient(
  ctx: RedisContext,
  clientId: string,
  query: PageQuery,
): Promise<Page<ConsentRecord>> {
  const listing = LISTINGS.consentsOfClient;
  const found = await byScore(ctx, ctx.keys.clientConsents(clientId), listing, query);
  return pageFrom(listing, found, (userIds) =>
    Promise.all(
      userIds.map(async (u) => liveConsent(ctx, await ctx.guard(() => ctx.client.get(ctx.keys.consent(u, clientId))))),
    ),
  );
}

/** BYLEX bounds of a prefix: `[prefix` to `(end`, or the whole index. */
function lexRange(prefix: string): [string, string] {
  if (prefix === '') return ['-', '+'];
  const end = prefixEnd(prefix);
  return [`[${prefix}`, end === undefined ? '+' : `(${end}`];
}

/** Up to `limit + 1` members of a lexicographic ZSET from `start` (a BYLEX bound) below `end`. */
async function byLex(ctx: RedisContext, key: string, start: string, end: string, limit: number): Promise<string[]> {
  return ctx.guard(() => ctx.client.zrangebylex(key, start, end, 'LIMIT', 0, limit + 1));
}

/** The greater of two BYLEX start bounds (a cursor's may lie before the prefix's range, or after). */
function laterStart(a: string, b: string): string {
  if (a === '-') return b;
  if (b === '-') return a;
  const av = a.slice(1);
  const bv = b.slice(1);
  if (av !== bv) return av > bv ? a : b;
  return a.startsWith('(') ? a : b;
}

/** Indexes clients stored before the listing indexes existed (sizes differ): once, idempotent. */
async function ensureClientIndex(ctx: RedisContext): Promise<void> {
  const k = ctx.keys;
  const [stored, indexed] = await Promise.all([
    ctx.guard(() => ctx.client.scard(k.clients)),
    ctx.guard(() => ctx.client.zcard(k.clientsById)),
  ]);
  if (stored === indexed) return;
  const ids = await ctx.guard(() => ctx.client.smembers(k.clients));
  for (let i = 0; i < ids.length; i += BATCH) {
    const batch = ids.slice(i, i + BATCH);
    const records = await mgetJson<ClientRecord>(
      ctx,
      batch.map((id) => k.client(id)),
    );
    await inBatches(records, (c) =>
      ctx.script('indexClient', clientKeys(ctx, c.clientId), [ctx.clock.now(), c.clientId, nameMember(c)]),
    );
  }
}

async function ensureUserIndex(ctx: RedisContext): Promise<void> {
  const k = ctx.keys;
  const [stored, indexed] = await Promise.all([
    ctx.guard(() => ctx.client.hlen(k.users)),
    ctx.guard(() => ctx.client.zcard(k.usersByName)),
  ]);
  if (stored === indexed) return;
  const names = await ctx.guard(() => ctx.client.hgetall(k.users));
  await inBatches(Object.entries(names), ([id, username]) =>
    ctx.script('indexUser', [k.users, k.usersByName], [ctx.clock.now(), id, username]),
  );
}

/** The page of members `found` (limit + 1 at most) mapped to records by key, with the cursor of the last shown. */
async function lexPage<T>(
  ctx: RedisContext,
  listing: Listing,
  members: string[],
  limit: number,
  recordKey: (member: string) => string,
  cursorOf: (member: string) => (string | number)[],
): Promise<Page<T>> {
  const shown = members.slice(0, limit);
  const items = await mgetJson<T>(ctx, shown.map(recordKey));
  const last = shown.at(-1);
  return {
    items,
    ...(members.length > limit && last !== undefined ? { nextCursor: encodeCursor(listing.name, cursorOf(last)) } : {}),
  };
}

/** Splits `<key>\0<id>` at the last NUL (ids never hold one). */
function splitMember(member: string): [string, string] {
  const at = member.lastIndexOf('\0');
  return [member.slice(0, at), member.slice(at + 1)];
}

export async function pageClients(ctx: RedisContext, query: ClientQuery): Promise<Page<ClientRecord>> {
  const k = ctx.keys;
  const limit = pageLimit(query);
  await ensureClientIndex(ctx);
  if (query.namePrefix !== undefined && query.namePrefix !== '') {
    const listing = LISTINGS.clientsByName;
    const after = cursorKey(listing, query);
    const [from, end] = lexRange(query.namePrefix.toLowerCase());
    let start = from;
    if (after) start = laterStart(start, `(${String(after[0])}\0${String(after[1])}`);
    const members = await byLex(ctx, k.clientsByName, start, end, limit);
    return lexPage(ctx, listing, members, limit, (m) => k.client(splitMember(m)[1]), splitMember);
  }
  const listing = LISTINGS.clientsById;
  const after = cursorKey(listing, query);
  const [from, end] = lexRange(query.idPrefix ?? '');
  let start = from;
  if (after) start = laterStart(start, `(${String(after[0])}`);
  const members = await byLex(ctx, k.clientsById, start, end, limit);
  return lexPage(
    ctx,
    listing,
    members,
    limit,
    (m) => k.client(m),
    (m) => [m],
  );
}

export async function pageUsers(ctx: RedisContext, query: UserQuery): Promise<Page<UserRecord>> {
  const k = ctx.keys;
  const limit = pageLimit(query);
  await ensureUserIndex(ctx);
  const listing = LISTINGS.users;
  const after = cursorKey(listing, query);
  const [from, end] = lexRange(query.usernamePrefix ?? '');
  let start = from;
  // Every member of one username starts `<username>\0`; the next username's sort after `<username>\x01`.
  if (after) start = laterStart(start, `[${String(after[0])}\x01`);
  const members = await byLex(ctx, k.usersByName, start, end, limit);
  return lexPage(
    ctx,
    listing,
    members,
    limit,
    (m) => k.user(splitMember(m)[1]),
    (m) => [splitMember(m)[0]],
  );
}
