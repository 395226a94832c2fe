import type { ScriptSource } from './prelude.js';

/** The Lua scripts of the replay guard (../replay-guard.ts). */
export const replayGuardScripts = {
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
} satisfies Record<string, ScriptSource>;
