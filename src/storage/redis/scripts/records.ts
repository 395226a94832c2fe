import type { ScriptSource } from './prelude.js';

/** The Lua scripts of expiring records by kind (../records.ts). */
export const recordScripts = {
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
} satisfies Record<string, ScriptSource>;
