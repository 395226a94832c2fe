import type { ScriptSource } from './prelude.js';

/** The Lua scripts of rate-limit counters (../counters.ts). */
export const counterScripts = {
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
} satisfies Record<string, ScriptSource>;
