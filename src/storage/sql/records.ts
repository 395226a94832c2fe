/**
 * The expiring-record primitive (model/ports.ts ExpiringRecordStore) over table `records` (migration 8): one row per
 * (kind, id), JSON value, optional owner tag. Interactions and sessions are kinds of it (storage/record-ports.ts).
 */
import type { JsonObject, RecordPlacement } from '../../model/ports.js';
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
