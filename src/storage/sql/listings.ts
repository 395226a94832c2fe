/**
 * The paged listings (model/ports.ts Page): keyset paging over the indexes of migration 12. Every query reads one
 * index range of the context's tenant, at most `limit + 1` rows; ids compare in the "C" collation (code points).
 */
import type { ClientQuery, Page, PageQuery, UserQuery } from '../../model/ports.js';
import { encodeCursor, pageLimit } from '../../model/ports.js';
import type { ClientRecord, ConsentRecord, GrantRecord, UserRecord } from '../../model/records.js';
import { LISTINGS, cursorKey, prefixEnd, type Listing } from '../paging.js';
import { toClient } from './clients.js';
import type { SqlContext } from './context.js';
import type { SqlRow } from './driver.js';
import { toGrant } from './grants.js';
import { strings } from './rows.js';
import { toUser } from './users.js';

/** Runs a page query whose last parameter is the row limit; `keyOf` gives a row's cursor key. */
async function page<T>(
  ctx: SqlContext,
  listing: Listing,
  query: PageQuery,
  sql: string,
  params: unknown[],
  toItem: (row: SqlRow) => T,
  keyOf: (row: SqlRow) => (string | number)[],
): Promise<Page<T>> {
  const limit = pageLimit(query);
  const { rows } = await ctx.db.query(sql, [...params, limit + 1]);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toItem),
    ...(rows.length > limit && last ? { nextCursor: encodeCursor(listing.name, keyOf(last)) } : {}),
  };
}

/** Grants of a user or of a client (`column`), newest expiry first. */
async function grantsBy(
  ctx: SqlContext,
  column: 'user_id' | 'client_id',
  value: string,
  query: PageQuery,
): Promise<Page<GrantRecord>> {
  const listing = column === 'user_id' ? LISTINGS.grantsOfUser : LISTINGS.grantsOfClient;
  const after = cursorKey(listing, query);
  const params: unknown[] = [ctx.tenant, value, ctx.clock.now()];
  let cond = '';
  if (after) {
    params.push(after[0], after[1]);
    cond = `AND (expires_at, id COLLATE "C") < ($4::bigint, $5::text COLLATE "C")`;
  }
  return page<GrantRecord>(
    ctx,
    listing,
    query,
    `SELECT * FROM ${ctx.t.grants}
     WHERE tenant = $1 AND ${column} = $2 AND expires_at > $3 AND NOT tombstone ${cond}
     ORDER BY expires_at DESC, id COLLATE "C" DESC LIMIT $${params.length + 1}`,
    params,
    toGrant,
    (r) => [Number(r.expires_at), String(r.id)],
  );
}

export function listGrantsOfUser(ctx: SqlContext, userId: string, query: PageQuery): Promise<Page<GrantRecord>> {
  return grantsBy(ctx, 'user_id', userId, query);
}

export function listGrantsOfClient(ctx: SqlContext, clientId: string, query: PageQuery): Promise<Page<GrantRecord>> {
  return grantsBy(ctx, 'client_id', clientId, query);
}

function toConsent(r: SqlRow): ConsentRecord {
  return {
    userId: String(r.user_id),
    clientId: String(r.client_id),
    scope: strings(r.scope),
    resource: strings(r.resource),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  };
}

async function consentsBy(
  ctx: SqlContext,
  column: 'user_id' | 'client_id',
  value: string,
  query: PageQuery,
): Promise<Page<ConsentRecord>> {
  const byUser = column === 'user_id';
  const listing = byUser ? LISTINGS.consentsOfUser : LISTINGS.consentsOfClient;
  const other = byUser ? 'client_id' : 'user_id';
  const after = cursorKey(listing, query);
  const params: unknown[] = [ctx.tenant, value, ctx.clock.now()];
  let cond = '';
  if (after) {
    params.push(after[0], after[1]);
    cond = `AND (expires_at, ${other} COLLATE "C") < ($4::bigint, $5::text COLLATE "C")`;
  }
  return page<ConsentRecord>(
    ctx,
    listing,
    query,
    `SELECT * FROM ${ctx.t.consents}
     WHERE tenant = $1 AND ${column} = $2 AND expires_at > $3 ${cond}
     ORDER BY expires_at DESC, ${other} COLLATE "C" DESC LIMIT $${params.length + 1}`,
    params,
    toConsent,
    (r) => [Number(r.expires_at), String(r[other])],
  );
}

export function listConsentsOfUser(ctx: SqlContext, userId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
  return consentsBy(ctx, 'user_id', userId, query);
}

export function listConsentsOfClient(
  ctx: SqlContext,
  clientId: string,
  query: PageQuery,
): Promise<Page<ConsentRecord>> {
  return consentsBy(ctx, 'client_id', clientId, query);
}

/** `column COLLATE "C"` within [prefix, prefixEnd(prefix)): the index range of a prefix. */
function prefixRange(column: string, prefix: string, params: unknown[]): string {
  if (prefix === '') return '';
  params.push(prefix);
  let cond = `AND ${column} COLLATE "C" >= $${params.length}::text COLLATE "C"`;
  const end = prefixEnd(prefix);
  if (end !== undefined) {
    params.push(end);
    cond += ` AND ${column} COLLATE "C" < $${params.length}::text COLLATE "C"`;
  }
  return cond;
}

export async function pageClients(ctx: SqlContext, query: ClientQuery): Promise<Page<ClientRecord>> {
  const params: unknown[] = [ctx.tenant];
  if (query.namePrefix !== undefined && query.namePrefix !== '') {
    const listing = LISTINGS.clientsByName;
    const after = cursorKey(listing, query);
    let cond = `AND name_key IS NOT NULL ${prefixRange('name_key', query.namePrefix.toLowerCase(), params)}`;
    if (after) {
      params.push(after[0], after[1]);
      cond += ` AND (name_key COLLATE "C", client_id COLLATE "C") >
        ($${params.length - 1}::text COLLATE "C", $${params.length}::text COLLATE "C")`;
    }
    return page(
      ctx,
      listing,
      query,
      `SELECT * FROM ${ctx.t.clients} WHERE tenant = $1 ${cond}
       ORDER BY name_key COLLATE "C", client_id COLLATE "C" LIMIT $${params.length + 1}`,
      params,
      toClient,
      (r) => [String(r.name_key), String(r.client_id)],
    );
  }
  const listing = LISTINGS.clientsById;
  const after = cursorKey(listing, query);
  let cond = prefixRange('client_id', query.idPrefix ?? '', params);
  if (after) {
    params.push(after[0]);
    cond += ` AND client_id COLLATE "C" > $${params.length}::text COLLATE "C"`;
  }
  return page(
    ctx,
    listing,
    query,
    `SELECT * FROM ${ctx.t.clients} WHERE tenant = $1 ${cond}
     ORDER BY client_id COLLATE "C" LIMIT $${params.length + 1}`,
    params,
    toClient,
    (r) => [String(r.client_id)],
  );
}

export async function pageUsers(ctx: SqlContext, query: UserQuery): Promise<Page<UserRecord>> {
  const listing = LISTINGS.users;
  const params: unknown[] = [ctx.tenant];
  const after = cursorKey(listing, query);
  let cond = prefixRange('username', query.usernamePrefix ?? '', params);
  if (after) {
    params.push(after[0]);
    cond += ` AND username COLLATE "C" > $${params.length}::text COLLATE "C"`;
  }
  return page(
    ctx,
    listing,
    query,
    `SELECT * FROM ${ctx.t.users} WHERE tenant = $1 ${cond}
     ORDER BY username COLLATE "C" LIMIT $${params.length + 1}`,
    params,
    toUser,
    (r) => [String(r.username)],
  );
}
