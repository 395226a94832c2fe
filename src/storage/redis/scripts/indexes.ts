import type { ScriptSource } from './prelude.js';

/** The Lua scripts that keep index ZSETs (scored by expiry), alone or together with the record they list. */
export const indexScripts = {
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
} satisfies Record<string, ScriptSource>;
