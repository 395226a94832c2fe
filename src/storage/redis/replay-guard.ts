/** The replay guard on Redis: one STRING `once:<key>` holding its expiresAt, set once by one single-key script. */
import type { RedisContext } from './redis-context.js';

export async function firstUse(ctx: RedisContext, key: string, expiresAt: number): Promise<boolean> {
  const now = ctx.clock.now();
  if (expiresAt <= now) return false;
  return (await ctx.script<number>('firstUse', [ctx.keys.replayGuard(key)], [now, expiresAt])) === 1;
}
