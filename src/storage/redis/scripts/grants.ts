import type { ScriptSource } from './prelude.js';

/**
 * The Lua scripts of grants, refresh rotation, access token ids and revocation (../grants.ts); they build on the
 * prelude's `revoke` and `grant_ttl`.
 */
export const grantScripts = {
  /**
   * Writes a grant, its first refresh token and its first access token id, unless the grant id is tombstoned.
   * KEYS: grant, rts, ats, rt, tombstone. ARGV: now, grantJson, grantExp, revokedAt|'', rtHash|'', rtJson, rtExp,
   * jti, jtiExp. Returns 1, 0 if expired, or -1 if tombstoned (revoked before it was created: nothing written).
   */
  createGrant: {
    lua: `
local now = tonumber(ARGV[1])
local tomb = redis.call('GET', KEYS[5])
if tomb and tonumber(tomb) > now then return -1 end
if tonumber(ARGV[3]) <= now then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'exp', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'rev', ARGV[4]) end
if ARGV[5] ~= '' and tonumber(ARGV[7]) > now then
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], 'd', ARGV[6], 'exp', ARGV[7])
  expire_at(KEYS[4], tonumber(ARGV[7]), now)
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[5])
  touch(KEYS[2], ARGV[1])
end
if tonumber(ARGV[9]) > now then
  redis.call('ZADD', KEYS[3], ARGV[9], ARGV[8])
  touch(KEYS[3], ARGV[1])
end
grant_ttl(KEYS[1], KEYS[3], ARGV[1])
return 1
`,
  },

  /**
   * Rotates a refresh token exactly once. KEYS: grant, rts, ats, oldRt, newRt.
   * ARGV: now, at (rotation time), graceMs, rtPrefix, newHash, newJson, newExp, successor, jti, jtiExp.
   * Returns {'rotated'} | {'grace', successor} | {'reused', hashes} | {'not_found'}.
   */
  rotateRefreshToken: {
    lua: `
local now = tonumber(ARGV[1])
local g = redis.call('HMGET', KEYS[1], 'exp', 'rev')
if not g[1] or tonumber(g[1]) <= now or g[2] then return {'not_found'} end
local t = redis.call('HMGET', KEYS[4], 'exp', 'rot', 'suc')
if not t[1] or tonumber(t[1]) <= now then return {'not_found'} end
if t[2] then
  if t[3] and tonumber(ARGV[2]) - tonumber(t[2]) <= tonumber(ARGV[3]) then return {'grace', t[3]} end
  -- Replay after the grace window: the family is presumed stolen (RFC 9700 4.14.2), revoke it in this same step.
  local r = revoke(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[1], ARGV[2])
  return {'reused', r[2]}
end
redis.call('HSET', KEYS[4], 'rot', ARGV[2], 'suc', ARGV[8])
redis.call('HSET', KEYS[1], 'used', ARGV[2])
if tonumber(ARGV[7]) > now then
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'd', ARGV[6], 'exp', ARGV[7])
  expire_at(KEYS[5], tonumber(ARGV[7]), now)
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[5])
  touch(KEYS[2], ARGV[1])
end
if tonumber(ARGV[10]) > now then
  redis.call('ZADD', KEYS[3], ARGV[10], ARGV[9])
  touch(KEYS[3], ARGV[1])
end
return {'rotated'}
`,
  },

  /**
   * Revokes a grant. KEYS: grant, rts, ats, tombstone. ARGV: now, at (revokedAt), rtPrefix, tombstoneTtlMs|''.
   * Returns {status, hashes, jti/expiry pairs, grantJson} (status as in \`revoke\`). With a tombstone TTL, an
   * unknown grant id is tombstoned for that long, so a createGrant of it afterwards writes nothing.
   */
  revokeGrant: {
    lua: `
local r = revoke(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[1], ARGV[2])
if r[1] == 0 and ARGV[4] ~= '' then
  local exp = tonumber(ARGV[1]) + tonumber(ARGV[4])
  local cur = tonumber(redis.call('GET', KEYS[4]) or '0')
  if cur < exp then
    redis.call('SET', KEYS[4], string.format('%d', exp))
    expire_at(KEYS[4], exp, tonumber(ARGV[1]))
  end
end
return r
`,
  },

  /**
   * Records an access token id under a grant (a revoked grant's late token is born revoked). KEYS: grant, ats.
   * ARGV: now, jti, exp. Returns 1 if recorded.
   */
  addAccessToken: {
    lua: `
local now = tonumber(ARGV[1])
if tonumber(ARGV[3]) <= now then return 0 end
local f = redis.call('HMGET', KEYS[1], 'exp', 'rev')
if not f[1] then return 0 end
if not f[2] and tonumber(f[1]) <= now then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
touch(KEYS[2], ARGV[1])
grant_ttl(KEYS[1], KEYS[2], ARGV[1])
return 1
`,
  },

  /** Whether a jti recorded under a grant is revoked with it. KEYS: grant, ats. ARGV: now, jti. Returns 1/0. */
  grantJtiRevoked: {
    lua: `
if not redis.call('HGET', KEYS[1], 'rev') then return 0 end
local exp = redis.call('ZSCORE', KEYS[2], ARGV[2])
if exp and tonumber(exp) > tonumber(ARGV[1]) then return 1 end
return 0
`,
  },

  /** Puts a jti on the revocation list; a later revocation never shortens an earlier one. KEYS: rev. ARGV: now, exp. */
  revokeJti: {
    lua: `
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
if exp <= now then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= exp then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
expire_at(KEYS[1], exp, now)
return 1
`,
  },
} satisfies Record<string, ScriptSource>;
