/**
 * Rate-limit counters on Redis: one HASH `rl:<key>` {n, exp} per fixed window, counted by one script and expiring
 * with its window.
 */
import { rateLimitWindowEnd } from '../../model/ports.js';
import type { RedisContext } from './redis-context.js';

export async function hitRateLimit(ctx: RedisContext, key: string, windowMs: number, now: number): Promise<number> {
  const windowEnd = rateLimitWindowEnd(now, windowMs);
  return Number(await ctx.script<number>('hitRateLimit', [ctx.keys.rateLimit(key)], [now, windowEnd]));
}

export async function peekRateLimit(ctx: RedisContext, key: string, now: number): Promise<number> {
  const [count, exp] = await ctx.guard(() => ctx.client.hmget(ctx.keys.rateLimit(key), 'n', 'exp'));
  return count !== null && exp !== null && Number(exp) > now ? Number(count) : 0;
}

export async function resetRateLimit(ctx: RedisContext, key: string): Promise<void> {
  await ctx.guard(() => ctx.client.del(ctx.keys.rateLimit(key)));
}
