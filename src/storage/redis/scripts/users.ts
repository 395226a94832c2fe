import type { ScriptSource } from './prelude.js';

/** The Lua scripts of users and their unique usernames (../users.ts). */
export const userScripts = {
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
} satisfies Record<string, ScriptSource>;
