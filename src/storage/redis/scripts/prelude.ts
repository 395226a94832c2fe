/**
 * What every Lua script of the Redis store shares. Each runs atomically on one node, and every key it touches shares
 * one hash tag (passed in KEYS, or built in the script from a same-tag prefix passed in ARGV), so it is also valid on
 * Cluster.
 *
 * Conventions: ARGV[1] is always `now` from the store's injected clock (epoch ms). Expiring records keep their
 * expiresAt in an `exp` field or as a ZSET score, are checked against `now` on every read, and get a PEXPIRE computed
 * from `exp - now`, so Redis drops them on its own. Index ZSETs score each member with its expiry; `touch` prunes
 * expired members and makes the index live exactly as long as its latest member.
 */

/** A script: its Lua body (without the prelude). Key counts are passed at call time. */
export interface ScriptSource {
  readonly lua: string;
}

/** Helpers shared by every script (prepended to each body, so every script's text and SHA include them). */
export const PRELUDE = `
-- PEXPIRE key so it lives until epoch ms \`exp\`; deletes it when that is already past.
local function expire_at(key, exp, now)
  local ttl = math.ceil(exp - now)
  if ttl <= 0 then
    redis.call('DEL', key)
    return false
  end
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  return true
end

-- An index ZSET scored by expiry: drop expired members, live as long as the latest one. Returns that expiry or 0.
local function touch(key, now_s)
  local now = tonumber(now_s)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #top == 0 then return 0 end
  local latest = tonumber(top[2])
  expire_at(key, latest, now)
  return latest
end

-- A grant lives until its expiresAt; once revoked, until its last access token expires if that is later, because
-- isAccessTokenRevoked reads the revocation of those tokens from it.
local function grant_ttl(grant, ats, now_s)
  local f = redis.call('HMGET', grant, 'exp', 'rev')
  if not f[1] then return end
  local keep = tonumber(f[1])
  if f[2] then
    local latest = touch(ats, now_s)
    if latest > keep then keep = latest end
  end
  expire_at(grant, keep, tonumber(now_s))
end

-- Revokes a grant: marks it revoked (the first revokedAt wins), deletes its refresh tokens and their index; its
-- access token ids stay in \`ats\`, which now reads as revoked. Returns {status, token hashes, jti/expiry pairs, d}
-- with status 0 = unknown or expired, 1 = revoked now, 2 = was already revoked.
local function revoke(grant, rts, ats, rt_prefix, now_s, at)
  local f = redis.call('HMGET', grant, 'exp', 'rev', 'd')
  if not f[1] or tonumber(f[1]) <= tonumber(now_s) then return {0, {}, {}, ''} end
  local status = 2
  if not f[2] then
    redis.call('HSET', grant, 'rev', at)
    status = 1
  end
  local hashes = redis.call('ZRANGE', rts, 0, -1)
  for _, h in ipairs(hashes) do redis.call('DEL', rt_prefix .. h) end
  redis.call('DEL', rts)
  touch(ats, now_s)
  local jtis = redis.call('ZRANGE', ats, 0, -1, 'WITHSCORES')
  grant_ttl(grant, ats, now_s)
  return {status, hashes, jtis, f[3]}
end
`;
