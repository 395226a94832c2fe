import type { ScriptSource } from './prelude.js';

/** The Lua scripts of users and their unique usernames (../users.ts), and of clients with their listings. */
export const userScripts = {
  /**
   * Saves a user with a unique username. KEYS: user, usernameKey, users (HASH id -> username), usersByName (ZSET).
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
if old then redis.call('ZREM', KEYS[4], old .. '\\0' .. ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[4] .. '\\0' .. ARGV[2])
return 1
`,
  },

  /** Deletes a user and frees its username. KEYS: user, users, usersByName. ARGV: now, id, usernamePrefix. Returns 1/0. */
  deleteUser: {
    lua: `
local name = redis.call('HGET', KEYS[2], ARGV[2])
if name then redis.call('ZREM', KEYS[3], name .. '\\0' .. ARGV[2]) end
redis.call('HDEL', KEYS[2], ARGV[2])
local existed = redis.call('DEL', KEYS[1])
if name and redis.call('GET', ARGV[3] .. name) == ARGV[2] then redis.call('DEL', ARGV[3] .. name) end
return existed
`,
  },

  /**
   * Adds a listed user to usersByName if it is still stored under that name (the index rebuild of older data).
   * KEYS: users, usersByName. ARGV: now, id, username.
   */
  indexUser: {
    lua: `
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[3] then redis.call('ZADD', KEYS[2], 0, ARGV[3] .. '\\0' .. ARGV[2]) end
return 1
`,
  },

  /**
   * Saves a client with its listing entries. KEYS: client, clients (SET), clientsById, clientsByName, clientNames.
   * ARGV: now, clientId, json, name member ('' for an unnamed client).
   */
  saveClient: {
    lua: `
local old = redis.call('HGET', KEYS[5], ARGV[2])
if old and old ~= ARGV[4] then redis.call('ZREM', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], 0, ARGV[4])
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[4])
else
  redis.call('HDEL', KEYS[5], ARGV[2])
end
return 1
`,
  },

  /** Deletes a client and its listing entries. KEYS: as saveClient. ARGV: now, clientId. Returns 1/0. */
  deleteClientRecord: {
    lua: `
local old = redis.call('HGET', KEYS[5], ARGV[2])
if old then redis.call('ZREM', KEYS[4], old) end
redis.call('HDEL', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[2])
return redis.call('DEL', KEYS[1])
`,
  },

  /**
   * Adds a stored client's listing entries unless it is gone (the index rebuild of older data). KEYS: as saveClient.
   * ARGV: now, clientId, name member ('' for none).
   */
  indexClient: {
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[3] ~= '' and not redis.call('HGET', KEYS[5], ARGV[2]) then
  redis.call('ZADD', KEYS[4], 0, ARGV[3])
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
end
return 1
`,
  },
} satisfies Record<string, ScriptSource>;
