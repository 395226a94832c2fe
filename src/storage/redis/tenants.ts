/**
 * Tenants on Redis: the deployment's tenant list is one HASH `{tenants}` (id -> TenantRecord JSON), the same key
 * whichever scope's layout reads it. A tenant's own items live under its keys (`{T/...` and `T/...`, see ./keys.ts),
 * which purgeTenant finds with SCAN.
 */
import { Cluster, type Redis } from 'ioredis';
import type { TenantRecord } from '../../model/records.js';
import { isTenantId } from '../../model/tenants.js';
import { tenantKeyPatterns } from './keys.js';
import { parseJson, type RedisContext } from './redis-context.js';

/** Keys asked for per SCAN step, and so deleted per round trip. */
const SCAN_COUNT = 1000;

export async function saveTenant(ctx: RedisContext, tenant: TenantRecord): Promise<void> {
  await ctx.guard(() => ctx.client.hset(ctx.keys.tenants, tenant.id, JSON.stringify(tenant)));
}

export async function getTenant(ctx: RedisContext, id: string): Promise<TenantRecord | undefined> {
  return parseJson<TenantRecord>(await ctx.guard(() => ctx.client.hget(ctx.keys.tenants, id)));
}

export async function listTenants(ctx: RedisContext): Promise<TenantRecord[]> {
  const all = await ctx.guard(() => ctx.client.hvals(ctx.keys.tenants));
  return all.map((json) => JSON.parse(json) as TenantRecord);
}

export async function deleteTenant(ctx: RedisContext, id: string): Promise<boolean> {
  return (await ctx.guard(() => ctx.client.hdel(ctx.keys.tenants, id))) === 1;
}

/** The ids in the deployment's tenant list (cleanup's round over the tenants). */
export async function tenantIds(ctx: RedisContext): Promise<string[]> {
  return ctx.guard(() => ctx.client.hkeys(ctx.keys.tenants));
}

/**
 * Deletes every key of tenant `id` under the store's prefix: SCAN for its tagged and its untagged keys on every
 * master (on Cluster each holds its own slots), UNLINK what each step finds. Returns the number of keys deleted.
 *
 * Not atomic: a request of the tenant that writes during the scan can leave a key behind (one the scan had passed).
 * That is acceptable because a tenant is purged once the registry has dropped it, so it gets no more requests; a
 * repeated purge removes any such leftover.
 */
export async function purgeTenant(ctx: RedisContext, id: string): Promise<number> {
  if (!isTenantId(id)) throw new RangeError(`not a tenant id: ${JSON.stringify(id)}`);
  const client = ctx.client;
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  let removed = 0;
  for (const node of nodes) {
    for (const pattern of tenantKeyPatterns(ctx.keys.prefix, id)) removed += await unlinkMatching(ctx, node, pattern);
  }
  return removed;
}

/** SCAN MATCH `pattern` on one node, unlinking each step's keys; returns how many were deleted. */
async function unlinkMatching(ctx: RedisContext, node: Redis, pattern: string): Promise<number> {
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await ctx.guard(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
    cursor = next;
    if (keys.length === 0) continue;
    // One UNLINK per key, pipelined: the keys of one step span slots, which a multi-key UNLINK refuses on Cluster.
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.unlink(key);
    removed += await ctx.guard(async () => {
      let deleted = 0;
      for (const [err, count] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        deleted += Number(count);
      }
      return deleted;
    });
  } while (cursor !== '0');
  return removed;
}
