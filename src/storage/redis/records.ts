/**
 * Expiring records by kind on Redis: each record is a STRING envelope `{"o":owner,"e":expiresAt,"v":value}` under
 * `rec:<kind>:<id>` with PX until expiresAt, and an owner's records are listed in the ZSET `{o:<owner>}:recs`.
 *
 * A record appended to (appendToRecord) after it was created carries its appended items beside the value,
 * `{"o":…,"e":…,"v":value,"a":[items],"h":[length of the items' text, items kept, items dropped, field,
 * droppedField]}`, which reading merges into the value: the script appends by splicing the stored text, so what
 * was stored is never re-encoded by Lua's cjson (lossy: empty arrays, numbers beyond 14 digits).
 */
import type { JsonObject, JsonValue, RecordAppend, RecordPlacement } from '../../model/ports.js';
import { appendedValue } from '../record-append.js';
import { inBatches, parseJson, ttlMs, type RedisContext } from './redis-context.js';
import { keyPart, ownedMember } from './keys.js';

/** A stored expiring record: owner (null when none), expiresAt, body; and what appends added since it was put. */
interface StoredRecord {
  o: string | null;
  e: number;
  v: JsonObject;
  a?: JsonValue[];
  h?: [number, number, number, string, string];
}

export async function putRecord(
  ctx: RedisContext,
  kind: string,
  id: string,
  value: JsonObject,
  placement: RecordPlacement,
): Promise<void> {
  const now = ctx.clock.now();
  const ttl = ttlMs(placement.expiresAt, now);
  const key = ctx.keys.record(kind, id);
  if (ttl === undefined) {
    await ctx.guard(() => ctx.client.del(key));
    return;
  }
  const envelope: StoredRecord = { o: placement.owner ?? null, e: placement.expiresAt, v: value };
  await ctx.guard(() => ctx.client.set(key, JSON.stringify(envelope), 'PX', ttl));
  // After the record, so the index over-approximates (deleteRecordsOwnedBy checks the owner in the record).
  if (placement.owner !== undefined) {
    await ctx.script(
      'indexAdd',
      [ctx.keys.ownedRecords(placement.owner)],
      [now, ownedMember(kind, id), placement.expiresAt],
    );
  }
}

export async function getRecord(ctx: RedisContext, kind: string, id: string): Promise<JsonObject | undefined> {
  return liveRecord(ctx, await ctx.guard(() => ctx.client.get(ctx.keys.record(kind, id))));
}

export async function takeRecord(ctx: RedisContext, kind: string, id: string): Promise<JsonObject | undefined> {
  // GETDEL is the atomic take; the owner index keeps a stale member until it expires or is pruned.
  return liveRecord(ctx, await ctx.guard(() => ctx.client.getdel(ctx.keys.record(kind, id))));
}

export async function appendToRecord(ctx: RedisContext, kind: string, id: string, append: RecordAppend): Promise<void> {
  const now = ctx.clock.now();
  const { placement } = append;
  const created: StoredRecord = {
    o: placement.owner ?? null,
    e: placement.expiresAt,
    v: appendedValue(append.create, append),
  };
  const createdNow = await ctx.script<number>(
    'appendToRecord',
    [ctx.keys.record(kind, id)],
    [
      now,
      JSON.stringify(created),
      placement.expiresAt,
      append.maxItems,
      append.field,
      append.droppedField,
      JSON.stringify(append.field),
      JSON.stringify(append.droppedField),
      ...append.items.map((item) => JSON.stringify(item)),
    ],
  );
  // Another slot, so a second call, only when the append started an owned record (as putRecord's).
  if (createdNow === 1 && placement.owner !== undefined) {
    await ctx.script(
      'indexAdd',
      [ctx.keys.ownedRecords(placement.owner)],
      [now, ownedMember(kind, id), placement.expiresAt],
    );
  }
}

export async function deleteRecord(ctx: RedisContext, kind: string, id: string): Promise<void> {
  await ctx.guard(() => ctx.client.del(ctx.keys.record(kind, id)));
}

export async function deleteRecordsOwnedBy(ctx: RedisContext, owner: string, kind?: string): Promise<number> {
  return deleteOwned(ctx, owner, kind, ctx.clock.now());
}

/**
 * Deletes an owner's live records (each key in its own slot) as an idempotent sequence, then their index entries
 * (the whole index when no kind is given). Also a step of deleteClient and deleteUser.
 */
export async function deleteOwned(
  ctx: RedisContext,
  owner: string,
  kind: string | undefined,
  now: number,
): Promise<number> {
  const index = ctx.keys.ownedRecords(owner);
  const all = await ctx.guard(() => ctx.client.zrangebyscore(index, `(${now}`, '+inf'));
  const prefix = kind === undefined ? undefined : `${keyPart(kind)}:`;
  const members = prefix === undefined ? all : all.filter((m) => m.startsWith(prefix));
  let removed = 0;
  await inBatches(members, async (member) => {
    const deleted = await ctx.script<number>('deleteOwnedRecord', [ctx.keys.recordPrefix + member], [now, owner]);
    removed += deleted;
  });
  if (kind === undefined) await ctx.guard(() => ctx.client.del(index));
  else if (members.length > 0) await ctx.script('indexRemove', [index], [now, ...members]);
  return removed;
}

/** The body of a stored record envelope, if it has not expired by the injected clock. */
function liveRecord(ctx: RedisContext, json: string | null): JsonObject | undefined {
  const record = parseJson<StoredRecord>(json);
  if (record === undefined || record.e <= ctx.clock.now()) return undefined;
  return record.h === undefined ? record.v : withAppended(record.v, record.a ?? [], record.h);
}

/** A record's value with the items appended since it was put (the script's `a` and `h`, see above). */
function withAppended(value: JsonObject, items: JsonValue[], trailer: NonNullable<StoredRecord['h']>): JsonObject {
  const [, , dropped, field, droppedField] = trailer;
  const before = value[field];
  const merged: JsonObject = { ...value, [field]: [...(Array.isArray(before) ? before : []), ...items] };
  if (dropped > 0) {
    const counted = value[droppedField];
    merged[droppedField] = (typeof counted === 'number' ? counted : 0) + dropped;
  }
  return merged;
}
