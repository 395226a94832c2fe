/** Users on Redis: JSON strings and unique usernames under `{users}`, and deleteUser's cascade. */
import { userOwner } from '../../model/record-kinds.js';
import type { UserRecord } from '../../model/records.js';
import { dropUserConsents } from './consents.js';
import { compare, mgetJson, parseJson, type RedisContext } from './redis-context.js';
import { revokeUserGrants } from './grants.js';
import { deleteOwned } from './records.js';

export async function getUser(ctx: RedisContext, id: string): Promise<UserRecord | undefined> {
  return parseJson<UserRecord>(await ctx.guard(() => ctx.client.get(ctx.keys.user(id))));
}

export async function getUserByUsername(ctx: RedisContext, username: string): Promise<UserRecord | undefined> {
  const id = await ctx.guard(() => ctx.client.get(ctx.keys.username(username)));
  if (id === null) return undefined;
  const user = await getUser(ctx, id);
  return user?.username === username ? user : undefined;
}

export async function saveUser(ctx: RedisContext, user: UserRecord): Promise<void> {
  const k = ctx.keys;
  const saved = await ctx.script<number>(
    'saveUser',
    [k.user(user.id), k.username(user.username), k.users, k.usersByName],
    [ctx.clock.now(), user.id, JSON.stringify(user), user.username, k.usernamePrefix],
  );
  if (saved !== 1) throw new Error(`username "${user.username}" is taken`);
}

/**
 * Spans slots (grants, sessions, consents, the user catalogue), so it is a sequence, not one script: each step is
 * idempotent and the user record goes last, so an interrupted call leaves the user in place and a retry completes it.
 */
export async function deleteUser(ctx: RedisContext, id: string): Promise<boolean> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  // 1. Every grant of theirs, as revokeGrant, with tombstones.
  await revokeUserGrants(ctx, id, now);
  // 2. Their records (sessions; each key in its own slot), then the index.
  await deleteOwned(ctx, userOwner(id), undefined, now);
  // 3. Their consents.
  await dropUserConsents(ctx, id, now);
  // 4. The user.
  const existed = await ctx.script<number>(
    'deleteUser',
    [k.user(id), k.users, k.usersByName],
    [now, id, k.usernamePrefix],
  );
  return existed === 1;
}

export async function listUsers(ctx: RedisContext): Promise<UserRecord[]> {
  const ids = await ctx.guard(() => ctx.client.hkeys(ctx.keys.users));
  const users = await mgetJson<UserRecord>(
    ctx,
    ids.map((id) => ctx.keys.user(id)),
  );
  return users.sort((a, b) => a.createdAt - b.createdAt || compare(a.id, b.id));
}
