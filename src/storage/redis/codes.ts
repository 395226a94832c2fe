/**
 * Authorization codes on Redis: one HASH `code:<hash>` each ({d, exp, gid, cid, used}, PX until expiresAt), redeemed
 * by one script on that one key, and listed per client in `{c:<clientId>}:codes` for deleteClient.
 */
import type { AuthorizationCodeRecord, CodeLookupResult, ConsumeCodeResult } from '../../model/records.js';
import { inBatches, scriptCall, ttlMs, type RedisContext } from './redis-context.js';

export async function saveAuthorizationCode(ctx: RedisContext, code: AuthorizationCodeRecord): Promise<void> {
  const now = ctx.clock.now();
  const key = ctx.keys.code(code.codeHash);
  const ttl = ttlMs(code.expiresAt, now);
  if (ttl === undefined) {
    await ctx.guard(() => ctx.client.del(key));
    return;
  }
  // One round trip: the code's script (one key, atomic) and its index entry (another slot) in one pipeline.
  await ctx.batch([
    scriptCall('saveCode', [key], [JSON.stringify(code), code.expiresAt, code.grantId, code.clientId, ttl]),
    scriptCall('indexAdd', [ctx.keys.clientCodes(code.clientId)], [now, code.codeHash, code.expiresAt]),
  ]);
}

export async function getAuthorizationCode(ctx: RedisContext, codeHash: string): Promise<CodeLookupResult> {
  // One HMGET: the same fields consumeCode reads, without the write.
  const [exp, used, gid, cid, d] = await ctx.guard(() =>
    ctx.client.hmget(ctx.keys.code(codeHash), 'exp', 'used', 'gid', 'cid', 'd'),
  );
  if (!exp || Number(exp) <= ctx.clock.now()) return { status: 'not_found' };
  if (used) return { status: 'reused', grantId: gid ?? '', clientId: cid ?? '' };
  return { status: 'live', code: JSON.parse(d ?? '') as AuthorizationCodeRecord };
}

export async function consumeAuthorizationCode(ctx: RedisContext, codeHash: string): Promise<ConsumeCodeResult> {
  const reply = await ctx.script<string[]>('consumeCode', [ctx.keys.code(codeHash)], [ctx.clock.now()]);
  switch (reply[0]) {
    case 'consumed':
      return { status: 'consumed', code: JSON.parse(reply[1] ?? '') as AuthorizationCodeRecord };
    case 'reused':
      return { status: 'reused', grantId: reply[1] ?? '', clientId: reply[2] ?? '' };
    default:
      return { status: 'not_found' };
  }
}

/** deleteClient's step: deletes the client's outstanding codes (each in its own slot); the index goes afterwards. */
export async function dropClientCodes(ctx: RedisContext, clientId: string): Promise<void> {
  const codes = await ctx.guard(() => ctx.client.zrange(ctx.keys.clientCodes(clientId), 0, -1));
  await inBatches(codes, (h) => ctx.guard(() => ctx.client.del(ctx.keys.code(h))));
}
