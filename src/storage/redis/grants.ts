/**
 * Grants on Redis: a grant's family (the grant, its refresh tokens and their index, its access-token ids) shares the
 * hash tag `{g:<grantId>}`, so creation, rotation and revocation are each one script on one slot. Refresh tokens and
 * jtis are found through pointer keys (`rtp:`, `atp:`, one slot each), written before the grant's script and dropped
 * when they lead nowhere. Single revoked jtis live on the revocation list `rev:<jti>`.
 */
import type { AccessTokenRef, GrantRecord, RefreshTokenRecord, RotateResult } from '../../model/records.js';
import { GRANT_TOMBSTONE_TTL_MS } from '../../model/records.js';
import { inBatches, scriptCall, ttlMs, type RedisCall, type RedisContext } from './redis-context.js';

export async function createGrant(
  ctx: RedisContext,
  grant: GrantRecord,
  refreshToken: RefreshTokenRecord | undefined,
  accessToken: AccessTokenRef,
): Promise<{ created: boolean }> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  // An already-expired grant would read as absent; storing it would only leave keys behind.
  if (grant.expiresAt <= now) return { created: true };
  // Pointers, grant and the client and user indexes in one round trip. Nobody can look the new refresh token or jti
  // up before this call returns (the caller has not handed them out yet), so they need not precede the grant.
  const { revokedAt, lastUsedAt: _lastUsedAt, ...stored } = grant;
  const calls: RedisCall[] = [
    scriptCall(
      'createGrant',
      [
        k.grant(grant.id),
        k.grantRefreshTokens(grant.id),
        k.grantAccessTokens(grant.id),
        k.refreshToken(grant.id, refreshToken?.tokenHash ?? ''),
        k.grantTombstone(grant.id),
      ],
      [
        now,
        JSON.stringify(stored),
        grant.expiresAt,
        revokedAt ?? '',
        refreshToken?.tokenHash ?? '',
        refreshToken ? refreshTokenJson(refreshToken) : '',
        refreshToken?.expiresAt ?? 0,
        accessToken.jti,
        accessToken.expiresAt,
      ],
    ),
    scriptCall(
      'indexAdd',
      [k.clientGrants(grant.clientId), k.userClientGrants(grant.userId, grant.clientId)],
      [now, grant.id, grant.expiresAt],
    ),
    scriptCall('indexAdd', [k.userGrants(grant.userId)], [now, grant.id, grant.expiresAt]),
    ...pointerCalls(refreshToken && [k.refreshPointer(refreshToken.tokenHash), grant.id, refreshToken.expiresAt, now], [
      k.accessPointer(accessToken.jti),
      grant.id,
      accessToken.expiresAt,
      now,
    ]),
  ];
  const [status] = await ctx.batch(calls);
  if (Number(status) !== -1) return { created: true };
  // Revoked before it existed (a replayed code): nothing was written in the grant's slot. Undo the rest, and put
  // the jti minted for it on the revocation list.
  await Promise.all([
    refreshToken ? dropKey(ctx, k.refreshPointer(refreshToken.tokenHash)) : undefined,
    dropKey(ctx, k.accessPointer(accessToken.jti)),
    ctx.script(
      'indexRemove',
      [k.clientGrants(grant.clientId), k.userClientGrants(grant.userId, grant.clientId)],
      [now, grant.id],
    ),
    ctx.script('indexRemove', [k.userGrants(grant.userId)], [now, grant.id]),
    revokeAccessToken(ctx, accessToken.jti, accessToken.expiresAt),
  ]);
  return { created: false };
}

export async function getGrant(ctx: RedisContext, id: string): Promise<GrantRecord | undefined> {
  return toGrant(await ctx.guard(() => ctx.client.hgetall(ctx.keys.grant(id))), ctx.clock.now());
}

export async function getRefreshToken(
  ctx: RedisContext,
  tokenHash: string,
): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
  const grantId = await ctx.guard(() => ctx.client.get(ctx.keys.refreshPointer(tokenHash)));
  if (grantId === null) return undefined;
  // Both keys are in the grant's slot: one pipeline, on a Cluster too.
  const [tokenHashFields, grantFields] = (await ctx.batch(
    [
      ['hgetall', ctx.keys.refreshToken(grantId, tokenHash)],
      ['hgetall', ctx.keys.grant(grantId)],
    ],
    true,
  )) as [Record<string, string>, Record<string, string>];
  const now = ctx.clock.now();
  const token = toRefreshToken(tokenHashFields, now);
  const grant = toGrant(grantFields, now);
  // A revoked grant's tokens are gone (revokeGrant deletes them); say so even if one is read mid-revocation.
  if (!token || !grant || grant.revokedAt !== undefined) return undefined;
  return { token, grant };
}

export async function rotateRefreshToken(
  ctx: RedisContext,
  oldHash: string,
  next: RefreshTokenRecord,
  successor: string,
  accessToken: AccessTokenRef,
  now: number,
  graceMs: number,
): Promise<RotateResult> {
  const k = ctx.keys;
  const current = ctx.clock.now();
  // The caller read `next.grantId` from this very token (getRefreshToken), so no pointer lookup: the old token's
  // key lives in that grant's slot, and the script finds nothing (not_found) if the token is not that grant's.
  const grantId = next.grantId;
  // Pointers and script in one round trip: nobody can present the new token or jti before this call returns. If
  // the rotation loses, they point at a grant that never lists them, which reads as absent, and are dropped below.
  const [reply] = (await ctx.batch([
    scriptCall(
      'rotateRefreshToken',
      [
        k.grant(grantId),
        k.grantRefreshTokens(grantId),
        k.grantAccessTokens(grantId),
        k.refreshToken(grantId, oldHash),
        k.refreshToken(grantId, next.tokenHash),
      ],
      [
        current,
        now,
        graceMs,
        k.refreshTokenPrefix(grantId),
        next.tokenHash,
        refreshTokenJson(next),
        next.expiresAt,
        successor,
        accessToken.jti,
        accessToken.expiresAt,
      ],
    ),
    ...pointerCalls(
      [k.refreshPointer(next.tokenHash), grantId, next.expiresAt, current],
      [k.accessPointer(accessToken.jti), grantId, accessToken.expiresAt, current],
    ),
  ])) as [[string, ...unknown[]]];
  if (reply[0] === 'rotated') return { status: 'rotated' };
  // The losing attempt's pointers lead nowhere; drop them rather than leave them for the token's lifetime.
  await Promise.all([
    dropKey(ctx, k.refreshPointer(next.tokenHash)),
    dropKey(ctx, k.accessPointer(accessToken.jti)),
    ...(reply[0] === 'reused' ? dropPointers(ctx, (reply[1] as string[] | undefined) ?? []) : []),
  ]);
  if (reply[0] === 'grace') return { status: 'grace', successor: String(reply[1]) };
  if (reply[0] === 'reused') return { status: 'reused', grantId };
  return { status: 'not_found' };
}

export async function addAccessToken(ctx: RedisContext, grantId: string, accessToken: AccessTokenRef): Promise<void> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  if (accessToken.expiresAt <= now) return;
  const pointer = k.accessPointer(accessToken.jti);
  await setPointer(ctx, pointer, grantId, accessToken.expiresAt, now);
  const recorded = await ctx.script<number>(
    'addAccessToken',
    [k.grant(grantId), k.grantAccessTokens(grantId)],
    [now, accessToken.jti, accessToken.expiresAt],
  );
  // Unknown grant: nothing was recorded, so the pointer leads nowhere.
  if (recorded !== 1) await dropKey(ctx, pointer);
}

export async function revokeGrant(ctx: RedisContext, grantId: string, now: number): Promise<boolean> {
  const { status } = await revoke(ctx, grantId, now, true);
  return status !== 0;
}

export async function revokeGrantsFor(
  ctx: RedisContext,
  userId: string,
  clientId: string,
  now: number,
): Promise<number> {
  const grantIds = await ctx.guard(() => ctx.client.zrange(ctx.keys.userClientGrants(userId, clientId), 0, -1));
  let revoked = 0;
  await inBatches(grantIds, async (grantId) => {
    if ((await revoke(ctx, grantId, now)).status === 1) revoked++;
  });
  return revoked;
}

/** The pointer `atp:<jti>`, if the grant still lists the jti with an expiry (ZSCORE) after the store's clock. */
export async function getAccessTokenGrantId(ctx: RedisContext, jti: string): Promise<string | undefined> {
  const grantId = await ctx.guard(() => ctx.client.get(ctx.keys.accessPointer(jti)));
  if (grantId === null) return undefined;
  const expiresAt = await ctx.guard(() => ctx.client.zscore(ctx.keys.grantAccessTokens(grantId), jti));
  return expiresAt !== null && Number(expiresAt) > ctx.clock.now() ? grantId : undefined;
}

export async function revokeAccessToken(ctx: RedisContext, jti: string, expiresAt: number): Promise<void> {
  await ctx.script('revokeJti', [ctx.keys.revokedJti(jti)], [ctx.clock.now(), expiresAt]);
}

export async function isAccessTokenRevoked(ctx: RedisContext, jti: string): Promise<boolean> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  const [revokedUntil, grantId] = (await ctx.batch([
    ['get', k.revokedJti(jti)],
    ['get', k.accessPointer(jti)],
  ])) as [string | null, string | null];
  if (revokedUntil !== null && Number(revokedUntil) > now) return true;
  if (grantId === null) return false;
  // Tokens of a revoked grant read as revoked from the grant itself: revokeGrant marks them in one atomic step.
  const revoked = await ctx.script<number>(
    'grantJtiRevoked',
    [k.grant(grantId), k.grantAccessTokens(grantId)],
    [now, jti],
  );
  return revoked === 1;
}

/**
 * deleteUser's step: revokes every grant of the user, as revokeGrant does. With a tombstone: a grant whose index
 * entry is written but whose createGrant has not run yet (a code redeemed right now) is then never created.
 */
export async function revokeUserGrants(ctx: RedisContext, userId: string, now: number): Promise<void> {
  const grantIds = await ctx.guard(() => ctx.client.zrange(ctx.keys.userGrants(userId), 0, -1));
  await inBatches(grantIds, (grantId) => revoke(ctx, grantId, now, true));
}

/**
 * deleteClient's step: removes every grant of the client for good (purgeGrant). Returns the ids of their users, whose
 * per-(user, client) indexes the caller deletes with the client's other indexes.
 */
export async function purgeClientGrants(ctx: RedisContext, clientId: string, now: number): Promise<Set<string>> {
  const grantIds = await ctx.guard(() => ctx.client.zrange(ctx.keys.clientGrants(clientId), 0, -1));
  const userIds = new Set<string>();
  await inBatches(grantIds, async (grantId) => {
    const userId = await purgeGrant(ctx, grantId, now);
    if (userId !== undefined) userIds.add(userId);
  });
  return userIds;
}

/** Runs revokeGrant's script and drops the deleted tokens' pointers. */
async function revoke(
  ctx: RedisContext,
  grantId: string,
  now: number,
  tombstone = false,
): Promise<{ status: number; jtis: [string, number][]; grant: string }> {
  const k = ctx.keys;
  const [status, hashes, pairs, grant] = await ctx.script<[number, string[], string[], string]>(
    'revokeGrant',
    [k.grant(grantId), k.grantRefreshTokens(grantId), k.grantAccessTokens(grantId), k.grantTombstone(grantId)],
    [ctx.clock.now(), now, k.refreshTokenPrefix(grantId), tombstone ? GRANT_TOMBSTONE_TTL_MS : ''],
  );
  await dropKeys(
    ctx,
    hashes.map((hash) => k.refreshPointer(hash)),
  );
  const jtis: [string, number][] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) jtis.push([pairs[i] as string, Number(pairs[i + 1])]);
  return { status: Number(status), jtis, grant };
}

/**
 * Removes a grant for good: revoke it first, so its access tokens read as revoked at every moment, copy those jtis
 * onto the revocation list, which outlives the grant, then delete the grant's keys.
 * Returns the grant's user id, if the grant was live.
 */
async function purgeGrant(ctx: RedisContext, grantId: string, now: number): Promise<string | undefined> {
  const k = ctx.keys;
  const { jtis, grant } = await revoke(ctx, grantId, now);
  await Promise.all(jtis.map(([jti, expiresAt]) => revokeAccessToken(ctx, jti, expiresAt)));
  await ctx.guard(() => ctx.client.del(k.grant(grantId), k.grantRefreshTokens(grantId), k.grantAccessTokens(grantId)));
  if (grant === '') return undefined;
  const { userId } = JSON.parse(grant) as GrantRecord;
  await ctx.script('indexRemove', [k.userGrants(userId)], [now, grantId]);
  return userId;
}

/** Deletes refresh-token pointers whose tokens are gone. */
function dropPointers(ctx: RedisContext, hashes: string[]): Promise<void>[] {
  return hashes.map((hash) => dropKey(ctx, ctx.keys.refreshPointer(hash)));
}

/** Best-effort delete of keys that lead nowhere (one round trip); leftovers still expire with their tokens. */
async function dropKeys(ctx: RedisContext, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await ctx.batch(keys.map((key) => ['del', key] as const)).catch(() => undefined);
}

/** SET PX calls for pointers (`[key, grantId, expiresAt, now]`) whose token has not expired yet. */
function pointerCalls(...pointers: ([string, string, number, number] | undefined)[]): RedisCall[] {
  const calls: RedisCall[] = [];
  for (const p of pointers) {
    if (!p) continue;
    const ttl = ttlMs(p[2], p[3]);
    if (ttl !== undefined) calls.push(['set', p[0], p[1], 'PX', ttl]);
  }
  return calls;
}

/** Best-effort delete of a key that leads nowhere; a leftover one still expires with its token. */
async function dropKey(ctx: RedisContext, key: string): Promise<void> {
  await ctx.client.del(key).catch(() => 0);
}

async function setPointer(
  ctx: RedisContext,
  key: string,
  grantId: string,
  expiresAt: number,
  now: number,
): Promise<void> {
  const ttl = ttlMs(expiresAt, now);
  if (ttl !== undefined) await ctx.guard(() => ctx.client.set(key, grantId, 'PX', ttl));
}

/** A refresh token's immutable part; rotatedAt and successor live in their own hash fields (set by the script). */
function refreshTokenJson(token: RefreshTokenRecord): string {
  const { rotatedAt: _rotatedAt, successor: _successor, ...rest } = token;
  return JSON.stringify(rest);
}

export function toGrant(fields: Record<string, string>, now: number): GrantRecord | undefined {
  if (fields.d === undefined || fields.exp === undefined || Number(fields.exp) <= now) return undefined;
  const grant = JSON.parse(fields.d) as GrantRecord;
  if (fields.rev !== undefined) grant.revokedAt = Number(fields.rev);
  if (fields.used !== undefined) grant.lastUsedAt = Number(fields.used);
  return grant;
}

function toRefreshToken(fields: Record<string, string>, now: number): RefreshTokenRecord | undefined {
  if (fields.d === undefined || fields.exp === undefined || Number(fields.exp) <= now) return undefined;
  const token = JSON.parse(fields.d) as RefreshTokenRecord;
  if (fields.rot !== undefined) token.rotatedAt = Number(fields.rot);
  if (fields.suc !== undefined) token.successor = fields.suc;
  return token;
}
