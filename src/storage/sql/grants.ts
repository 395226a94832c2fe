/**
 * Grants and their tokens: tables `grants`, `refresh_tokens`, `access_token_refs`, and the revocation list
 * `revoked_jtis`, all within the context's tenant (a grant's tokens share its tenant). Lock order is always the grant
 * row, then its tokens, so rotation and revocation serialise instead of deadlocking.
 */
import type { AccessTokenRef, GrantRecord, RefreshTokenRecord, RotateResult } from '../../model/records.js';
import { GRANT_TOMBSTONE_TTL_MS } from '../../model/records.js';
import type { SqlContext } from './context.js';
import type { SqlQueryable, SqlRow } from './driver.js';
import { compact, optNumber, optString, optStrings, strings } from './rows.js';

export async function createGrant(
  ctx: SqlContext,
  grant: GrantRecord,
  refreshToken: RefreshTokenRecord | undefined,
  accessToken: AccessTokenRef,
): Promise<{ created: boolean }> {
  const r = refreshToken;
  // One statement. ON CONFLICT on the primary key is the race with revokeGrant's tombstone upsert: whichever
  // inserts the row first makes the other wait for its commit. A tombstoned id inserts nothing (so neither do the
  // token CTEs, which read from g), and the access token id minted for it goes on the revocation list instead.
  const { rows } = await ctx.retrying(() =>
    ctx.db.query<{ created: number }>(
      `WITH g AS (
         INSERT INTO ${ctx.t.grants} (tenant, id, client_id, user_id, scope, resource, auth_time, nonce, created_at,
           expires_at, revoked_at, amr, dpop_jkt)
         VALUES ($1, $2, $3, $4, $5::text[], $6::text[], $7, $8, $9, $10, $11, $22::text[], $23)
         ON CONFLICT (tenant, id) DO NOTHING
         RETURNING tenant, id
       ), rt AS (
         INSERT INTO ${ctx.t.refresh_tokens} (tenant, token_hash, grant_id, client_id, scope, created_at,
           expires_at, rotated_at, successor)
         SELECT g.tenant, $12::text, g.id, $13, $14::text[], $15::bigint, $16::bigint, $17::bigint, $18::text FROM g
         WHERE $12::text IS NOT NULL
       ), a AS (
         INSERT INTO ${ctx.t.access_token_refs} AS a (tenant, grant_id, jti, expires_at)
         SELECT g.tenant, g.id, $19::text, $20::bigint FROM g
         ON CONFLICT (tenant, grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at)
       ), dead AS (
         INSERT INTO ${ctx.t.revoked_jtis} AS d (tenant, jti, expires_at)
         SELECT $1::text, $19::text, $20::bigint WHERE NOT EXISTS (SELECT 1 FROM g) AND $20::bigint > $21::bigint
         ON CONFLICT (tenant, jti) DO UPDATE SET expires_at = GREATEST(d.expires_at, EXCLUDED.expires_at)
       )
       SELECT count(*)::int AS created FROM g`,
      [
        ctx.tenant,
        grant.id,
        grant.clientId,
        grant.userId,
        grant.scope,
        grant.resource,
        grant.authTime,
        grant.nonce ?? null,
        grant.createdAt,
        grant.expiresAt,
        grant.revokedAt ?? null,
        r?.tokenHash ?? null,
        r?.clientId ?? null,
        r?.scope ?? null,
        r?.createdAt ?? null,
        r?.expiresAt ?? null,
        r?.rotatedAt ?? null,
        r?.successor ?? null,
        accessToken.jti,
        accessToken.expiresAt,
        ctx.clock.now(),
        grant.amr ?? null,
        grant.dpopJkt ?? null,
      ],
    ),
  );
  return { created: Number(rows[0]?.created) > 0 };
}

export async function getGrant(ctx: SqlContext, id: string): Promise<GrantRecord | undefined> {
  const { rows } = await ctx.db.query(
    `SELECT * FROM ${ctx.t.grants} WHERE tenant = $1 AND id = $2 AND expires_at > $3 AND NOT tombstone`,
    [ctx.tenant, id, ctx.clock.now()],
  );
  return rows[0] && toGrant(rows[0]);
}

export async function getRefreshToken(
  ctx: SqlContext,
  tokenHash: string,
): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
  const { rows } = await ctx.db.query(
    `SELECT rt.token_hash, rt.grant_id, rt.client_id AS rt_client_id, rt.scope AS rt_scope,
       rt.created_at AS rt_created_at, rt.expires_at AS rt_expires_at, rt.rotated_at, rt.successor, g.*
     FROM ${ctx.t.refresh_tokens} rt JOIN ${ctx.t.grants} g ON g.tenant = rt.tenant AND g.id = rt.grant_id
     WHERE rt.tenant = $1 AND rt.token_hash = $2 AND rt.expires_at > $3 AND g.expires_at > $3`,
    [ctx.tenant, tokenHash, ctx.clock.now()],
  );
  const r = rows[0];
  if (!r) return undefined;
  const token = toRefreshToken({
    token_hash: r.token_hash,
    grant_id: r.grant_id,
    client_id: r.rt_client_id,
    scope: r.rt_scope,
    created_at: r.rt_created_at,
    expires_at: r.rt_expires_at,
    rotated_at: r.rotated_at,
    successor: r.successor,
  });
  return { token, grant: toGrant(r) };
}

export async function rotateRefreshToken(
  ctx: SqlContext,
  oldHash: string,
  next: RefreshTokenRecord,
  successor: string,
  accessToken: AccessTokenRef,
  now: number,
  graceMs: number,
): Promise<RotateResult> {
  // One call: the function (migration 10) runs the steps of the former transaction, each with a fresh snapshot,
  // all within the tenant. `next.grantId` is the grant the caller read this token with; a token of another grant is
  // not_found.
  const { rows } = await ctx.retrying(() =>
    ctx.db.query<{ o_status: string; o_successor: string | null }>(
      `SELECT o_status, o_successor
       FROM ${ctx.fn.rotate}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text[], $11, $12, $13, $14)`,
      [
        ctx.tenant,
        oldHash,
        next.grantId,
        now,
        ctx.clock.now(),
        graceMs,
        successor,
        next.tokenHash,
        next.clientId,
        next.scope,
        next.createdAt,
        next.expiresAt,
        accessToken.jti,
        accessToken.expiresAt,
      ],
    ),
  );
  switch (rows[0]?.o_status) {
    case 'rotated':
      return { status: 'rotated' };
    case 'grace':
      return { status: 'grace', successor: rows[0].o_successor ?? '' };
    case 'reused':
      return { status: 'reused', grantId: next.grantId };
    default:
      return { status: 'not_found' };
  }
}

export async function addAccessToken(ctx: SqlContext, grantId: string, accessToken: AccessTokenRef): Promise<void> {
  // One statement, no BEGIN/COMMIT. FOR SHARE holds off a concurrent revokeGrant, so the jti is either copied by it or
  // revoked here: a locking read that waited for a revocation's commit returns the row as that commit left it (READ
  // COMMITTED re-reads a locked row's latest version), so `revoked_at` is current when the two inserts use it.
  await ctx.retrying(() =>
    ctx.db.query(
      `WITH g AS (
         SELECT revoked_at FROM ${ctx.t.grants} WHERE tenant = $1 AND id = $2 FOR SHARE
       ), a AS (
         INSERT INTO ${ctx.t.access_token_refs} AS a (tenant, grant_id, jti, expires_at)
         SELECT $1::text, $2::text, $3::text, $4::bigint FROM g
         ON CONFLICT (tenant, grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at)
       )
       INSERT INTO ${ctx.t.revoked_jtis} AS r (tenant, jti, expires_at)
       SELECT $1::text, $3::text, $4::bigint FROM g WHERE g.revoked_at IS NOT NULL
       ON CONFLICT (tenant, jti) DO UPDATE SET expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at)`,
      [ctx.tenant, grantId, accessToken.jti, accessToken.expiresAt],
    ),
  );
}

export async function revokeGrant(ctx: SqlContext, grantId: string, now: number): Promise<boolean> {
  const clockNow = ctx.clock.now();
  // One call (migration 14): the upsert of the grant (or its tombstone) that takes the row lock, then, for a real
  // grant, the deletion of its refresh tokens and the copy of its access-token ids, each with a fresh snapshot.
  const { rows } = await ctx.retrying(() =>
    ctx.db.query<{ revoked: boolean }>(`SELECT ${ctx.fn.revoke}($1, $2, $3, $4, $5) AS revoked`, [
      ctx.tenant,
      grantId,
      now,
      clockNow,
      clockNow + GRANT_TOMBSTONE_TTL_MS,
    ]),
  );
  return rows[0]?.revoked === true;
}

export async function revokeGrantsFor(ctx: SqlContext, userId: string, clientId: string, now: number): Promise<number> {
  const clockNow = ctx.clock.now();
  return ctx.tx(async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE ${ctx.t.grants} SET revoked_at = $4
       WHERE tenant = $1 AND user_id = $2 AND client_id = $3 AND revoked_at IS NULL AND expires_at > $5 RETURNING id`,
      [ctx.tenant, userId, clientId, now, clockNow],
    );
    const ids = rows.map((r) => r.id);
    if (ids.length > 0) await dropGrantTokens(ctx, tx, ids, clockNow);
    return ids.length;
  });
}

/** By (tenant, jti): the index of migration 11. */
export async function getAccessTokenGrantId(ctx: SqlContext, jti: string): Promise<string | undefined> {
  const { rows } = await ctx.db.query<{ grant_id: string }>(
    `SELECT grant_id FROM ${ctx.t.access_token_refs} WHERE tenant = $1 AND jti = $2 AND expires_at > $3 LIMIT 1`,
    [ctx.tenant, jti, ctx.clock.now()],
  );
  return rows[0]?.grant_id;
}

export async function revokeAccessToken(ctx: SqlContext, jti: string, expiresAt: number): Promise<void> {
  await upsertRevokedJti(ctx, ctx.db, jti, expiresAt);
}

export async function isAccessTokenRevoked(ctx: SqlContext, jti: string): Promise<boolean> {
  const { rows } = await ctx.db.query(
    `SELECT 1 FROM ${ctx.t.revoked_jtis} WHERE tenant = $1 AND jti = $2 AND expires_at > $3`,
    [ctx.tenant, jti, ctx.clock.now()],
  );
  return rows.length > 0;
}

/**
 * Deletes the grants' refresh tokens and copies their live access-token ids to the revocation list. The caller holds
 * the grant rows' locks (revokeGrant, revokeGrantsFor, deleteUser).
 */
export async function dropGrantTokens(
  ctx: SqlContext,
  tx: SqlQueryable,
  grantIds: string[],
  clockNow: number,
): Promise<void> {
  // One statement: the caller already holds the grant rows' locks, so this snapshot sees every token of theirs.
  await tx.query(
    `WITH dropped AS (DELETE FROM ${ctx.t.refresh_tokens} WHERE tenant = $1 AND grant_id = ANY($2::text[]))
     INSERT INTO ${ctx.t.revoked_jtis} (tenant, jti, expires_at)
     SELECT $1::text, jti, max(expires_at) FROM ${ctx.t.access_token_refs}
     WHERE tenant = $1 AND grant_id = ANY($2::text[]) AND expires_at > $3 GROUP BY jti
     ON CONFLICT (tenant, jti) DO UPDATE
       SET expires_at = GREATEST(${ctx.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
    [ctx.tenant, grantIds, clockNow],
  );
}

async function upsertRevokedJti(ctx: SqlContext, q: SqlQueryable, jti: string, expiresAt: number): Promise<void> {
  await q.query(
    `INSERT INTO ${ctx.t.revoked_jtis} (tenant, jti, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant, jti) DO UPDATE
       SET expires_at = GREATEST(${ctx.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
    [ctx.tenant, jti, expiresAt],
  );
}

export function toGrant(r: SqlRow): GrantRecord {
  return compact({
    id: String(r.id),
    clientId: String(r.client_id),
    userId: String(r.user_id),
    scope: strings(r.scope),
    resource: strings(r.resource),
    authTime: Number(r.auth_time),
    amr: optStrings(r.amr),
    nonce: optString(r.nonce),
    dpopJkt: optString(r.dpop_jkt),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    revokedAt: optNumber(r.revoked_at),
    lastUsedAt: optNumber(r.last_used_at),
  });
}

function toRefreshToken(r: SqlRow): RefreshTokenRecord {
  return compact({
    tokenHash: String(r.token_hash),
    grantId: String(r.grant_id),
    clientId: String(r.client_id),
    scope: strings(r.scope),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    rotatedAt: optNumber(r.rotated_at),
    successor: optString(r.successor),
  });
}
