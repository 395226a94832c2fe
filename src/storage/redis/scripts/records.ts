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
  /**
   * ExpiringRecordStore.appendToRecord on one record key (../records.ts has the envelope's two shapes). Absent or
   * expired: SETs the new record as given, PX until its expiresAt. Live: appends the items to the envelope's `a`
   * list, which reading merges into the value's field, by splicing the stored text, never re-encoding it (cjson
   * would turn an empty array into an object and round numbers to 14 digits); SET … KEEPTTL, so the expiry stays.
   * KEYS: record. ARGV: now, new envelope, its expiresAt, maxItems, field, droppedField, field and droppedField as
   * JSON, then each item as JSON. Returns 1 if it created the record, else 0.
   */
  appendToRecord: {
    lua: `
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local record = raw and cjson.decode(raw)
if not record or tonumber(record.e) <= now then
  local ttl = math.ceil(tonumber(ARGV[3]) - now)
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', string.format('%d', ttl))
  return 1
end
-- The envelope starts {"o":<owner>,"e":<expiresAt>,"v": (the owner is a JSON string or null, so the first ,"v":
-- is this one: a quote inside a JSON string is escaped).
local v_from = string.find(raw, ',"v":', 1, true) + 5
local value, items, count, dropped
local h = record.h
if h then
  if h[4] ~= ARGV[5] or h[5] ~= ARGV[6] then
    return redis.error_reply('appendToRecord: this record appends to another field')
  end
  -- ... <value>,"a":[<items>],"h":[<#items>,<count>,<dropped>,<field>,<droppedField>]}: the last ],"h":[ is the
  -- trailer's (the trailer holds numbers and two JSON strings).
  local at = #raw - string.find(string.reverse(raw), '[:"h",]', 1, true) - 5
  local length = tonumber(h[1])
  items = string.sub(raw, at - length, at - 1)
  value = string.sub(raw, v_from, at - length - 7)
  count = tonumber(h[2])
  dropped = tonumber(h[3])
else
  value = string.sub(raw, v_from, #raw - 1)
  items = ''
  local list = record.v[ARGV[5]]
  count = (type(list) == 'table' and #list) or 0
  dropped = 0
end
local offered = #ARGV - 8
local take = math.min(offered, math.max(0, tonumber(ARGV[4]) - count))
if take > 0 then
  local added = table.concat(ARGV, ',', 9, 8 + take)
  if items == '' then items = added else items = items .. ',' .. added end
end
count = count + take
dropped = dropped + offered - take
local out = string.sub(raw, 1, v_from - 1) .. value .. ',"a":[' .. items .. '],"h":['
  .. string.format('%d,%d,%d,', #items, count, dropped) .. ARGV[7] .. ',' .. ARGV[8] .. ']}'
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return 0
`,
  },
} satisfies Record<string, ScriptSource>;
