import type { ScriptSource } from './prelude.js';

/** The Lua scripts of signing keys and named secrets (../signing-keys.ts). */
export const signingKeyScripts = {
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

  /** Returns the secret, creating it from the candidate on first use. KEYS: secret. ARGV: now, candidate. */
  getOrCreateSecret: {
    lua: `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
`,
  },
} satisfies Record<string, ScriptSource>;
