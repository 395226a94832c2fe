/**
 * The expiring-record primitive (model/ports.ts ExpiringRecordStore) over table `records` (migration 8): one row per
 * (kind, id), JSON value, optional owner tag. Interactions and sessions are kinds of it (storage/record-ports.ts).
 */
import type { JsonObject, RecordAppend, RecordPlacement } from '../../model/ports.js';
import { appendedValue } from '../record-append.js';
import type { SqlContext } from './context.js';
import { jsonObject } from './rows.js';

export async function putRecord(
  ctx: SqlContext,
  kind: string,
  id: string,
  value: JsonObject,
  placement: RecordPlacement,
): Promise<void> {
  await ctx.db.query(
    `INSERT INTO ${ctx.t.records} (tenant, kind, id, owner, value, expires_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
     ON CONFLICT (tenant, kind, id) DO UPDATE SET owner = EXCLUDED.owner, value = EXCLUDED.value,
       expires_at = EXCLUDED.expires_at`,
    [ctx.tenant, kind, id, placement.owner ?? null, JSON.stringify(value), placement.expiresAt],
  );
}

export async function getRecord(ctx: SqlContext, kind: string, id: string): Promise<JsonObject | undefined> {
  const { rows } = await ctx.db.query(
    `SELECT value FROM ${ctx.t.records} WHERE tenant = $1 AND kind = $2 AND id = $3 AND expires_at > $4`,
    [ctx.tenant, kind, id, ctx.clock.now()],
  );
  return rows[0] && jsonObject(rows[0].value);
}

export async function takeRecord(ctx: SqlContext, kind: string, id: string): Promise<JsonObject | undefined> {
  // DELETE ... RETURNING is the atomic take: of racing callers only one gets the row.
  const { rows } = await ctx.db.query(
    `DELETE FROM ${ctx.t.records} WHERE tenant = $1 AND kind = $2 AND id = $3 RETURNING value, expires_at`,
    [ctx.tenant, kind, id],
  );
  const row = rows[0];
  if (!row || Number(row.expires_at) <= ctx.clock.now()) return undefined;
  return jsonObject(row.value);
}

// appendToRecord's SQL over the stored row `r`: $8 field, $9 items (a jsonb array), $10 maxItems, $11 droppedField.
const EXISTING = `(CASE WHEN jsonb_typeof(r.value -> $8::text) = 'array' THEN r.value -> $8::text ELSE '[]'::jsonb END)`;
const ROOM = `GREATEST(0, $10::int - jsonb_array_length(${EXISTING}))`;
const KEPT = `(SELECT COALESCE(jsonb_agg(item ORDER BY n), '[]'::jsonb)
  FROM jsonb_array_elements($9::jsonb) WITH ORDINALITY AS items(item, n) WHERE n <= ${ROOM})`;
const DROPPED = `(jsonb_array_length($9::jsonb) - LEAST(jsonb_array_length($9::jsonb), ${ROOM}))`;
const DROPPED_BEFORE = `COALESCE(CASE WHEN jsonb_typeof(r.value -> $11::text) = 'number'
  THEN (r.value ->> $11::text)::numeric END, 0)`;
const APPENDED = `r.value || jsonb_build_object($8::text, ${EXISTING} || ${KEPT})
  || CASE WHEN ${DROPPED} > 0 THEN jsonb_build_object($11::text, ${DROPPED_BEFORE} + ${DROPPED}) ELSE '{}'::jsonb END`;

export async function appendToRecord(ctx: SqlContext, kind: string, id: string, append: RecordAppend): Promise<void> {
  // One statement, atomic across replicas: the upsert locks the row, so concurrent appends apply one after the other
  // (each to the row as the previous one left it). An expired row is replaced by the new record, not appended to; a
  // live one keeps its owner and expiry (SET expressions all read the row as it was).
  const expired = `r.expires_at <= $7`;
  await ctx.db.query(
    `INSERT INTO ${ctx.t.records} AS r (tenant, kind, id, owner, value, expires_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6)
     ON CONFLICT (tenant, kind, id) DO UPDATE SET
       value = CASE WHEN ${expired} THEN EXCLUDED.value ELSE ${APPENDED} END,
       owner = CASE WHEN ${expired} THEN EXCLUDED.owner ELSE r.owner END,
       expires_at = CASE WHEN ${expired} THEN EXCLUDED.expires_at ELSE r.expires_at END`,
    [
      ctx.tenant,
      kind,
      id,
      append.placement.owner ?? null,
      JSON.stringify(appendedValue(append.create, append)),
      append.placement.expiresAt,
      ctx.clock.now(),
      append.field,
      JSON.stringify(append.items),
      append.maxItems,
      append.droppedField,
    ],
  );
}

export async function deleteRecord(ctx: SqlContext, kind: string, id: string): Promise<void> {
  await ctx.db.query(`DELETE FROM ${ctx.t.records} WHERE tenant = $1 AND kind = $2 AND id = $3`, [
    ctx.tenant,
    kind,
    id,
  ]);
}

export async function deleteRecordsOwnedBy(ctx: SqlContext, owner: string, kind?: string): Promise<number> {
  const { rows } = await ctx.db.query<{ live: unknown }>(
    `WITH gone AS (DELETE FROM ${ctx.t.records} WHERE tenant = $1 AND owner = $2 AND ($3::text IS NULL OR kind = $3)
       RETURNING expires_at)
     SELECT count(*) FILTER (WHERE expires_at > $4) AS live FROM gone`,
    [ctx.tenant, owner, kind ?? null, ctx.clock.now()],
  );
  return Number(rows[0]?.live ?? 0);
}
