/**
 * Lua scripts for the Redis store. Each runs atomically on one node, and every key it touches shares one hash tag
 * (passed in KEYS, or built in the script from a same-tag prefix passed in ARGV), so it is also valid on Cluster.
 *
 * Conventions: ARGV[1] is always `now` from the store's injected clock (epoch ms). Expiring records keep their
 * expiresAt in an `exp` field or as a ZSET score, are checked against `now` on every read, and get a PEXPIRE computed
 * from `exp - now`, so Redis drops them on its own. Index ZSETs score each member with its expiry; `touch` prunes
 * expired members and makes the index live exactly as long as its latest member.
 */

/** Helpers shared by every script (prepended to each body). */
const PRELUDE = `
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

/** A script: its Lua body (without the prelude). Key counts are passed at call time. */
interface ScriptSource {
  readonly lua: string;
}

const sources = {
  /**
   * Redeems a code once. KEYS: code. ARGV: now.
   * Returns {'consumed', json} | {'reused', grantId, clientId} | {'not_found'}.
   */
  consumeCode: {
    lua: `
local f = redis.call('HMGET', KEYS[1], 'exp', 'used', 'gid', 'cid', 'd')
if not f[1] or tonumber(f[1]) <= tonumber(ARGV[1]) then return {'not_found'} end
if f[2] then return {'reused', f[3], f[4]} end
redis.call('HSET', KEYS[1], 'used', ARGV[1])
return {'consumed', f[5]}
`,
  },

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

  /**
   * ReplayGuard.firstUse: SET NX PX, except that a key whose stored expiresAt has passed by the injected clock counts
   * as absent (Redis drops it on its own clock a moment later). One key, so valid on Cluster. KEYS: guard key.
   * ARGV: now, expiresAt. Returns 1 on first use, else 0.
   */
  firstUse: {
    lua: `
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
if exp <= now then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > now then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', string.format('%d', math.ceil(exp - now)))
return 1
`,
  },

  /** Adds (score > now) or just prunes: member into each index ZSET. KEYS: indexes (one slot). ARGV: now, member, score. */
  indexAdd: {
    lua: `
local live = tonumber(ARGV[3]) > tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  if live then redis.call('ZADD', key, ARGV[3], ARGV[2]) end
  touch(key, ARGV[1])
end
return 1
`,
  },

  /**
   * Deletes an expiring record if `owner` still owns it (it may have been put again under another owner since the
   * index entry was written). KEYS: record. ARGV: now, owner. Returns 1 if a live record was deleted, else 0.
   */
  deleteOwnedRecord: {
    lua: `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.o ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(record.e) > tonumber(ARGV[1]) then return 1 end
return 0
`,
  },

  /** Removes the members from each index ZSET. KEYS: indexes (one slot). ARGV: now, member, ... */
  indexRemove: {
    lua: `
for _, key in ipairs(KEYS) do
  for i = 2, #ARGV do redis.call('ZREM', key, ARGV[i]) end
  touch(key, ARGV[1])
end
return 1
`,
  },

  /**
   * Writes (or, with json '', deletes) a JSON record and its index entry. KEYS: record, index.
   * ARGV: now, json, exp, member.
   */
  putIndexed: {
    lua: `
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' and tonumber(ARGV[3]) > now then
  redis.call('SET', KEYS[1], ARGV[2])
  expire_at(KEYS[1], tonumber(ARGV[3]), now)
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
else
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[4])
end
touch(KEYS[2], ARGV[1])
return 1
`,
  },

  /** Deletes every record an index lists, and the index. KEYS: index. ARGV: now, recordPrefix. Returns members. */
  dropIndexed: {
    lua: `
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do redis.call('DEL', ARGV[2] .. m) end
redis.call('DEL', KEYS[1])
return members
`,
  },

  /**
   * Saves a user with a unique username. KEYS: user, usernameKey, users (HASH id -> username).
   * ARGV: now, id, json, username, usernamePrefix. Returns 1, or 0 (storing nothing) if another user holds the name.
   */
  saveUser: {
    lua: `
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[2] and redis.call('HEXISTS', KEYS[3], owner) == 1 then return 0 end
local old = redis.call('HGET', KEYS[3], ARGV[2])
if old and old ~= ARGV[4] and redis.call('GET', ARGV[5] .. old) == ARGV[2] then
  redis.call('DEL', ARGV[5] .. old)
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
`,
  },

  /** Deletes a user and frees its username. KEYS: user, users. ARGV: now, id, usernamePrefix. Returns 1/0. */
  deleteUser: {
    lua: `
local name = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
local existed = redis.call('DEL', KEYS[1])
if name and redis.call('GET', ARGV[3] .. name) == ARGV[2] then redis.call('DEL', ARGV[3] .. name) end
return existed
`,
  },

  /**
   * Stores the initial signing keys unless an active key exists. KEYS: signing, meta, seq.
   * ARGV: now, then per key: kid, json, status, alg, expiresAt|''. Returns 1 if stored.
   */
  initSigningKeys: {
    lua: `
local meta = redis.call('HVALS', KEYS[2])
for _, v in ipairs(meta) do
  if string.sub(v, 1, 7) == 'active|' then return 0 end
end
for i = 2, #ARGV, 5 do
  local seq = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2] .. '|' .. ARGV[i + 3] .. '|' .. ARGV[i + 4] .. '|' .. seq)
end
return 1
`,
  },

  /**
   * Adds an active key, retires the other active keys of its alg until retireUntil, drops expired retired keys.
   * KEYS: signing, meta, seq. ARGV: now, kid, json, alg, retireUntil.
   */
  rotateSigningKey: {
    lua: `
local now = tonumber(ARGV[1])
local meta = redis.call('HGETALL', KEYS[2])
for i = 1, #meta, 2 do
  local kid = meta[i]
  local status, alg, exp, seq = string.match(meta[i + 1], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if status == 'retired' and exp ~= '' and tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], kid)
    redis.call('HDEL', KEYS[2], kid)
  elseif status == 'active' and alg == ARGV[4] and kid ~= ARGV[2] then
    redis.call('HSET', KEYS[2], kid, 'retired|' .. alg .. '|' .. ARGV[5] .. '|' .. seq)
  end
end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], 'active|' .. ARGV[4] .. '||' .. seq)
return 1
`,
  },

  /** Drops retired keys past their expiry. KEYS: signing, meta. ARGV: now. Returns how many. */
  pruneSigningKeys: {
    lua: `
local now = tonumber(ARGV[1])
local meta = redis.call('HGETALL', KEYS[2])
local removed = 0
for i = 1, #meta, 2 do
  local status, exp = string.match(meta[i + 1], '^([^|]*)|[^|]*|([^|]*)|')
  if status == 'retired' and exp ~= '' and tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], meta[i])
    redis.call('HDEL', KEYS[2], meta[i])
    removed = removed + 1
  end
end
return removed
`,
  },

  /**
   * Counts one hit in a fixed window. KEYS: rl. ARGV: now, windowEnd. A live counter (exp > now) is incremented and
   * keeps its window; otherwise a new one starts at 1, expiring at windowEnd. Returns the count.
   */
  hitRateLimit: {
    lua: `
local now = tonumber(ARGV[1])
local exp = redis.call('HGET', KEYS[1], 'exp')
if exp and tonumber(exp) > now then return redis.call('HINCRBY', KEYS[1], 'n', 1) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'n', '1', 'exp', ARGV[2])
-- windowEnd > now by construction, so the counter always gets a positive TTL.
expire_at(KEYS[1], tonumber(ARGV[2]), now)
return 1
`,
  },

  /** Returns the secret, creating it from the candidate on first use. KEYS: secret. ARGV: now, candidate. */
  // Layout upgrade: replaces a record only if it is still the one read (a concurrent write wins). ARGV: now, old, new.
  replaceIfUnchanged: {
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1
`,
  },
  getOrCreateSecret: {
    lua: `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
`,
  },
} satisfies Record<string, ScriptSource>;

/** Names of the store's scripts. */
export type ScriptName = keyof typeof sources;

/** The scripts with the prelude prepended, ready for ioredis `defineCommand`. */
export const SCRIPTS: Readonly<Record<ScriptName, string>> = Object.fromEntries(
  Object.entries(sources).map(([name, source]) => [name, `${PRELUDE}\n${source.lua}`]),
) as Record<ScriptName, string>;
