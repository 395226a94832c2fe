/**
 * Consents on Redis: one JSON string per (user, client) in the user's slot with the user's index
 * `{u:<userId>}:consents` (written together by one script), and the client's index `{c:<clientId>}:consents`.
 */
import type { ConsentRecord } from '../../model/records.js';
import { inBatches, parseJson, type RedisContext } from './redis-context.js';

export async function getConsent(
  ctx: RedisContext,
  userId: string,
  clientId: string,
): Promise<ConsentRecord | undefined> {
  const consent = parseJson<ConsentRecord>(await ctx.guard(() => ctx.client.get(ctx.keys.consent(userId, clientId))));
  return consent !== undefined && consent.expiresAt > ctx.clock.now() ? consent : undefined;
}

export async function saveConsent(ctx: RedisContext, consent: ConsentRecord): Promise<void> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  const { userId, clientId } = consent;
  await ctx.script(
    'putIndexed',
    [k.consent(userId, clientId), k.userConsents(userId)],
    [now, JSON.stringify(consent), consent.expiresAt, clientId],
  );
  await ctx.script('indexAdd', [k.clientConsents(clientId)], [now, userId, consent.expiresAt]);
}

export async function deleteConsent(ctx: RedisContext, userId: string, clientId: string): Promise<void> {
  const now = ctx.clock.now();
  await dropConsent(ctx, userId, clientId, now);
  await ctx.script('indexRemove', [ctx.keys.clientConsents(clientId)], [now, userId]);
}

/** deleteClient's step: deletes every consent given to the client; the client's index goes afterwards. */
export async function dropClientConsents(ctx: RedisContext, clientId: string, now: number): Promise<void> {
  const userIds = await ctx.guard(() => ctx.client.zrange(ctx.keys.clientConsents(clientId), 0, -1));
  await inBatches(userIds, (userId) => dropConsent(ctx, userId, clientId, now));
}

/** deleteUser's step: the user's consents leave the clients' indexes, then go with the user's index. */
export async function dropUserConsents(ctx: RedisContext, userId: string, now: number): Promise<void> {
  const k = ctx.keys;
  const clientIds = await ctx.guard(() => ctx.client.zrange(k.userConsents(userId), 0, -1));
  await inBatches(clientIds, (clientId) => ctx.script('indexRemove', [k.clientConsents(clientId)], [now, userId]));
  await ctx.script<string[]>('dropIndexed', [k.userConsents(userId)], [now, k.consentPrefix(userId)]);
}

/** Deletes one consent and its entry in the user's index, in one script on the user's slot. */
function dropConsent(ctx: RedisContext, userId: string, clientId: string, now: number): Promise<unknown> {
  const k = ctx.keys;
  return ctx.script('putIndexed', [k.consent(userId, clientId), k.userConsents(userId)], [now, '', 0, clientId]);
}
