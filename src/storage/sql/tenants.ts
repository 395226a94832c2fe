/**
 * The deployment's list of tenants (table `tenants`, migration 10), the same from every view, and purgeTenant, which
 * deletes one tenant's rows from every scoped table.
 */
import type { TenantRecord } from '../../model/records.js';
import { isTenantId } from '../../model/tenants.js';
import { SCOPED_TABLES, type SqlContext } from './context.js';
import type { SqlRow } from './driver.js';
import { jsonObject } from './rows.js';

export async function saveTenant(ctx: SqlContext, t: TenantRecord): Promise<void> {
  await ctx.db.query(
    `INSERT INTO ${ctx.t.tenants} (id, settings, source, created_at, updated_at)
     VALUES ($1, $2::text::jsonb, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings, source = EXCLUDED.source,
       created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
    [t.id, JSON.stringify(t.settings), t.source, t.createdAt, t.updatedAt],
  );
}

export async function getTenant(ctx: SqlContext, id: string): Promise<TenantRecord | undefined> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.tenants} WHERE id = $1`, [id]);
  return rows[0] && toTenant(rows[0]);
}

export async function listTenants(ctx: SqlContext): Promise<TenantRecord[]> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.tenants} ORDER BY id`);
  return rows.map(toTenant);
}

export async function deleteTenant(ctx: SqlContext, id: string): Promise<boolean> {
  const { rowCount } = await ctx.db.query(`DELETE FROM ${ctx.t.tenants} WHERE id = $1`, [id]);
  return rowCount > 0;
}

/**
 * Deletes every row of tenant `id` from every scoped table in one transaction; returns how many. Whatever view it is
 * called on, it purges `id`. The default scope ('') is not a tenant and cannot be purged: RangeError.
 */
export async function purgeTenant(ctx: SqlContext, id: string): Promise<number> {
  if (!isTenantId(id)) throw new RangeError(`not a tenant id: ${JSON.stringify(id)}`);
  return ctx.tx(async (tx) => {
    let total = 0;
    // SCOPED_TABLES lists a grant's tokens before it, so they are counted rather than cascaded away unseen.
    for (const table of SCOPED_TABLES) {
      total += (await tx.query(`DELETE FROM ${ctx.t[table]} WHERE tenant = $1`, [id])).rowCount;
    }
    return total;
  });
}

function toTenant(r: SqlRow): TenantRecord {
  return {
    id: String(r.id),
    settings: jsonObject(r.settings),
    source: String(r.source) as TenantRecord['source'],
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
