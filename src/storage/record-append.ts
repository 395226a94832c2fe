/**
 * What ExpiringRecordStore.appendToRecord (model/ports.ts) makes of a record, in one place: the memory store applies
 * it to the stored record, the SQL and Redis stores to `create` for the record an append starts (their own append
 * to an existing record does the same in SQL and Lua, checked by the contract suite, storage/contract/records.ts).
 */
import type { JsonObject, JsonValue, RecordAppend } from '../model/ports.js';

/** `base` with `append.items` added to `append.field` (up to `maxItems`, the rest counted): a new object. */
export function appendedValue(base: JsonObject, append: RecordAppend): JsonObject {
  const existing = base[append.field];
  const list: JsonValue[] = Array.isArray(existing) ? [...existing] : [];
  const room = Math.max(0, append.maxItems - list.length);
  const kept = append.items.slice(0, room);
  const dropped = append.items.length - kept.length;
  const value: JsonObject = { ...base, [append.field]: [...list, ...kept] };
  if (dropped > 0) {
    const before = base[append.droppedField];
    value[append.droppedField] = (typeof before === 'number' ? before : 0) + dropped;
  }
  return value;
}
