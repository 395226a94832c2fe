import type { ScriptSource } from './prelude.js';

/** The Lua scripts of authorization codes (../codes.ts). */
export const codeScripts = {
  /**
   * Saves a code (replacing any earlier one under the key) with its expiry, atomically. KEYS: code.
   * ARGV: json, exp, grantId, clientId, ttl ms.
   */
  saveCode: {
    lua: `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'exp', ARGV[2], 'gid', ARGV[3], 'cid', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`,
  },
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
} satisfies Record<string, ScriptSource>;
