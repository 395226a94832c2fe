/**
 * Signing keys and named secrets on Redis, under `{keys}`: key JSON in one hash, each key's mutable state
 * (`status|alg|expiresAt|seq`) in another, so the rotation scripts change it in place.
 */
import type { SigningKeyRecord } from '../../model/records.js';
import type { RedisContext, ScriptArg } from './redis-context.js';

export async function listSigningKeys(ctx: RedisContext): Promise<SigningKeyRecord[]> {
  const k = ctx.keys;
  const [records, meta] = await Promise.all([
    ctx.guard(() => ctx.client.hgetall(k.signingKeys)),
    ctx.guard(() => ctx.client.hgetall(k.signingMeta)),
  ]);
  const now = ctx.clock.now();
  const keys: { key: SigningKeyRecord; seq: number }[] = [];
  for (const [kid, json] of Object.entries(records)) {
    const state = parseSigningMeta(meta[kid]);
    if (!state) continue;
    if (state.status === 'retired' && state.expiresAt !== undefined && state.expiresAt <= now) continue;
    const key: SigningKeyRecord = { ...(JSON.parse(json) as SigningKeyRecord), status: state.status };
    if (state.expiresAt !== undefined) key.expiresAt = state.expiresAt;
    keys.push({ key, seq: state.seq });
  }
  // Newest first; among keys created in the same millisecond, the one added last.
  return keys.sort((a, b) => b.key.createdAt - a.key.createdAt || b.seq - a.seq).map((entry) => entry.key);
}

export async function initSigningKeys(ctx: RedisContext, initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
  const k = ctx.keys;
  const args: ScriptArg[] = [ctx.clock.now()];
  for (const key of initial) {
    const expiresAt = key.status === 'retired' && key.expiresAt !== undefined ? String(key.expiresAt) : '';
    args.push(key.kid, signingJson(key), key.status, key.alg, expiresAt);
  }
  await ctx.script('initSigningKeys', [k.signingKeys, k.signingMeta, k.signingSeq], args);
  return listSigningKeys(ctx);
}

export async function rotateSigningKey(ctx: RedisContext, key: SigningKeyRecord, retireUntil: number): Promise<void> {
  const k = ctx.keys;
  await ctx.script(
    'rotateSigningKey',
    [k.signingKeys, k.signingMeta, k.signingSeq],
    [ctx.clock.now(), key.kid, signingJson(key), key.alg, retireUntil],
  );
}

/** Drops retired signing keys past their expiry (the store's cleanup: Redis expires everything else on its own). */
export async function pruneSigningKeys(ctx: RedisContext): Promise<number> {
  const removed = await ctx.script<number>(
    'pruneSigningKeys',
    [ctx.keys.signingKeys, ctx.keys.signingMeta],
    [ctx.clock.now()],
  );
  return Number(removed);
}

export async function getOrCreateSecret(ctx: RedisContext, name: string, candidate: string): Promise<string> {
  return ctx.script<string>('getOrCreateSecret', [ctx.keys.secret(name)], [ctx.clock.now(), candidate]);
}

/** A signing key without status and expiresAt, which live in the meta hash so scripts can change them. */
function signingJson(key: SigningKeyRecord): string {
  const { status: _status, expiresAt: _expiresAt, ...rest } = key;
  return JSON.stringify(rest);
}

function parseSigningMeta(
  value: string | undefined,
): { status: SigningKeyRecord['status']; expiresAt: number | undefined; seq: number } | undefined {
  const match = value === undefined ? null : /^(active|retired)\|[^|]*\|([^|]*)\|(\d+)$/.exec(value);
  if (!match) return undefined;
  return {
    status: match[1] as SigningKeyRecord['status'],
    expiresAt: match[2] ? Number(match[2]) : undefined,
    seq: Number(match[3]),
  };
}
